//! The experimental interior-opacity term: where it counts and what it pays.

use gstomnimatte::interior_opacity::{interior, interior_opacity_loss, EROSION_RADIUS};
use gstomnimatte::train::{TrainConfig, Trainer};
use tch::{IndexOp, Kind, Tensor};

/// A [1, 1, T, 1, 16, 16] mask: a 10x10 square at rows and columns 3..13.
fn square_masks(t: i64) -> Tensor {
    let m = Tensor::zeros([1, 1, t, 1, 16, 16], (Kind::Float, tch::Device::Cpu));
    let _ = m.narrow(4, 3, 10).narrow(5, 3, 10).fill_(1.0);
    m
}

/// Layers [1, 1, T, 4, 16, 16] in [-1, 1] whose alpha is `inside` on the 4x4 centre (the
/// square's interior at radius 3) and `edge` everywhere else.
fn layers_with_alpha(t: i64, inside: f64, edge: f64) -> Tensor {
    let layers = Tensor::zeros([1, 1, t, 4, 16, 16], (Kind::Float, tch::Device::Cpu));
    let mut alpha = layers.narrow(3, 3, 1);
    let _ = alpha.fill_(edge * 2.0 - 1.0);
    let _ = alpha
        .narrow(4, 6, 4)
        .narrow(5, 6, 4)
        .fill_(inside * 2.0 - 1.0);
    layers
}

#[test]
fn the_interior_is_the_mask_less_its_edge_but_not_less_the_image_border() {
    let inner = interior(&square_masks(1), EROSION_RADIUS);
    assert_eq!(inner.size(), vec![1, 1, 1, 1, 16, 16]);
    // 10 pixels wide, 3 off each side: 4x4 left.
    assert_eq!(inner.sum(Kind::Float).double_value(&[]), 16.0);
    assert_eq!(inner.double_value(&[0, 0, 0, 0, 6, 6]), 1.0);
    assert_eq!(inner.double_value(&[0, 0, 0, 0, 5, 6]), 0.0);
    // A mask over the whole image keeps all of it: objects leaving the frame stay counted.
    let full = Tensor::ones([1, 1, 1, 1, 16, 16], (Kind::Float, tch::Device::Cpu));
    assert_eq!(
        interior(&full, EROSION_RADIUS)
            .sum(Kind::Float)
            .double_value(&[]),
        256.0
    );
}

#[test]
fn of_an_object_thinner_than_the_erosion_its_middle_line_is_kept() {
    // Frame 0: the 10x10 square. Frame 1: a bar 3 pixels wide (rows 5..8), as a walker's limb.
    // Frame 2: a line 1 pixel wide. Frame 3: nothing.
    let masks = Tensor::zeros([1, 1, 4, 1, 16, 16], (Kind::Float, tch::Device::Cpu));
    let _ = masks.i((0, 0, 0, 0, 3..13, 3..13)).fill_(1.0);
    let _ = masks.i((0, 0, 1, 0, 5..8, 2..14)).fill_(1.0);
    let _ = masks.i((0, 0, 2, 0, 9..10, 2..14)).fill_(1.0);
    let inner = interior(&masks, EROSION_RADIUS);
    let count = |t: i64| inner.i((0, 0, t)).sum(Kind::Float).double_value(&[]);
    // The square's erosion is untouched by what the other frames hold.
    assert_eq!(count(0), 16.0);
    // The bar keeps its middle row less a pixel at each end: 10 pixels, all on row 6.
    assert_eq!(count(1), 10.0);
    let middle_row = inner.i((0, 0, 1, 0, 6)).sum(Kind::Float);
    assert_eq!(middle_row.double_value(&[]), 10.0);
    // A line one pixel wide is its own middle line; an empty mask has no interior.
    assert_eq!(count(2), 12.0);
    assert_eq!(count(3), 0.0);
}

#[test]
fn the_term_pays_for_transparency_inside_only_on_hidden_frames() {
    let masks = square_masks(2);
    let hidden = Tensor::from_slice(&[0.0f32, 0.0]).view([1, 2]);
    // Opaque inside, transparent on the edge: the bleeding a mask may carry costs nothing.
    let opaque = interior_opacity_loss(&layers_with_alpha(2, 1.0, 0.0), &masks, &hidden);
    assert!(opaque.double_value(&[]).abs() < 1e-6);
    // A quarter transparent inside: 0.25.
    let quarter = interior_opacity_loss(&layers_with_alpha(2, 0.75, 1.0), &masks, &hidden);
    assert!((quarter.double_value(&[]) - 0.25).abs() < 1e-6);
    // Seen frames are not paid for.
    let seen = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
    let free = interior_opacity_loss(&layers_with_alpha(2, 0.0, 0.0), &masks, &seen);
    assert_eq!(free.double_value(&[]), 0.0);
}

#[test]
fn its_gradient_makes_the_interior_more_opaque() {
    let masks = square_masks(1);
    let hidden = Tensor::from_slice(&[0.0f32]).view([1, 1]);
    let layers = layers_with_alpha(1, 0.5, 0.5).set_requires_grad(true);
    interior_opacity_loss(&layers, &masks, &hidden).backward();
    let grad = layers.grad().narrow(3, 3, 1);
    // Descending the gradient raises alpha inside and leaves the rest alone.
    assert!(grad.double_value(&[0, 0, 0, 0, 7, 7]) < 0.0);
    assert_eq!(grad.double_value(&[0, 0, 0, 0, 4, 4]), 0.0);
    assert_eq!(grad.double_value(&[0, 0, 0, 0, 0, 0]), 0.0);
}

#[test]
fn a_negative_weight_is_a_clear_error() {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let config = TrainConfig {
        interior_opacity: -0.1,
        ..TrainConfig::test_time(10, 5e-4, 0.1)
    };
    let err = Trainer::new(&vs, config)
        .err()
        .expect("a negative weight is refused");
    assert!(err.to_string().contains("interior-opacity weight"), "{err}");
}
