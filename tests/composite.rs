//! Algorithm 1 against hand-computed pixels, and detail transfer's exact reconstruction.

mod common;

use common::{max_abs_diff, pixel, seeded};
use gstomnimatte::composite::{composite, composite_alpha, detail_transfer};
use tch::{Device, Kind, Tensor};

/// Background (0.2, 0.4, 0.6); back layer red at alpha 0.5; front layer blue at alpha 0.25.
fn two_layers_over_background() -> (Tensor, Tensor) {
    let back = pixel(&[1.0, 0.0, 0.0, 0.5]);
    let front = pixel(&[0.0, 0.0, 1.0, 0.25]);
    let layers = Tensor::stack(&[back, front], 0).unsqueeze(0); // [1, 2, 4, 1, 1]
    (layers, pixel(&[0.2, 0.4, 0.6]).unsqueeze(0))
}

#[test]
fn layers_composite_back_to_front() {
    let (layers, bg) = two_layers_over_background();
    // Back: 0.5 * red + 0.5 * bg = (0.6, 0.2, 0.3); front: 0.25 * blue + 0.75 * that.
    let expected = pixel(&[0.45, 0.15, 0.475]).unsqueeze(0);
    assert!(max_abs_diff(&composite(&layers, &bg), &expected) < 1e-6);

    // The other order is a different picture: order matters.
    let swapped = layers.flip([1]);
    let other = pixel(&[
        0.5 * 1.0 + 0.5 * 0.15,
        0.5 * 0.3,
        0.5 * 0.0 + 0.5 * (0.25 + 0.75 * 0.6),
    ])
    .unsqueeze(0);
    assert!(max_abs_diff(&composite(&swapped, &bg), &other) < 1e-6);
}

#[test]
fn composited_alpha_follows_the_reference_rule() {
    let (layers, _) = two_layers_over_background();
    // A = 0 * 0.5 + 0.5^2 = 0.25, then A = 0.25 * 0.75 + 0.25^2 = 0.25.
    let a = composite_alpha(&layers);
    assert!(max_abs_diff(&a, &Tensor::from_slice(&[0.25f32]).view([1, 1, 1, 1])) < 1e-6);
}

#[test]
fn detail_transfer_reproduces_the_input_exactly() {
    let opts = (Kind::Float, Device::Cpu);
    let (layers, bg, frame) = seeded(7, || {
        (
            Tensor::rand([2, 3, 5, 4, 16, 24], opts),
            Tensor::rand([2, 1, 3, 16, 24], opts),
            Tensor::rand([2, 5, 3, 16, 24], opts),
        )
    });
    assert!(max_abs_diff(&composite(&layers, &bg), &frame) > 0.1);
    let (new_layers, new_bg) = detail_transfer(&layers, &bg, &frame);
    assert!(max_abs_diff(&composite(&new_layers, &new_bg), &frame) < 1e-5);
    // Every colour stays a valid 8-bit colour.
    for t in [&new_layers, &new_bg] {
        assert!(t.min().double_value(&[]) >= 0.0 && t.max().double_value(&[]) <= 1.0);
    }
    // Alpha is untouched; only colours carry the residual.
    assert!(new_layers.narrow(3, 3, 1).equal(&layers.narrow(3, 3, 1)));
}

#[test]
fn an_opaque_front_layer_takes_the_whole_residual() {
    let front = pixel(&[0.5, 0.5, 0.5, 1.0]);
    let back = pixel(&[0.1, 0.1, 0.1, 0.3]);
    let layers = Tensor::stack(&[back, front], 0).unsqueeze(0);
    let bg = pixel(&[0.0, 0.0, 0.0]).unsqueeze(0);
    let frame = pixel(&[0.7, 0.6, 0.5]).unsqueeze(0);
    let (new_layers, _) = detail_transfer(&layers, &bg, &frame);
    let front_rgb = new_layers.select(1, 1).narrow(1, 0, 3);
    assert!(max_abs_diff(&front_rgb, &frame) < 1e-6);
}
