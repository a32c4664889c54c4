//! Mirror averaging's mean of two sets of layers (the stream's use of it: tests/stream.rs).

mod common;

use common::{max_abs_diff, pixel, seeded};
use gstomnimatte::composite::composite;
use gstomnimatte::mirror::{average_layers, mirrored};
use tch::{Device, Kind, Tensor};

#[test]
fn the_mean_layer_composites_to_the_mean_of_the_two_composites() {
    let (a, b, background) = seeded(3, || {
        let layer = || Tensor::rand([1, 1, 4, 8, 8], (Kind::Float, Device::Cpu));
        let background = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        (layer(), layer(), background)
    });
    let mean = average_layers(&a, &b);
    let expected = (composite(&a, &background) + composite(&b, &background)) * 0.5;
    assert!(max_abs_diff(&composite(&mean, &background), &expected) < 1e-5);
}

#[test]
fn colour_is_weighted_by_alpha_and_transparent_pixels_keep_the_plain_mean() {
    // Red at alpha 0.6 and blue at alpha 0.2: alpha 0.4, colour three parts red to one blue.
    let red = pixel(&[1.0, 0.0, 0.0, 0.6]);
    let blue = pixel(&[0.0, 0.0, 1.0, 0.2]);
    let mean = average_layers(&red, &blue);
    assert!(max_abs_diff(&mean, &pixel(&[0.75, 0.0, 0.25, 0.4])) < 1e-6);
    // Both fully transparent: no alpha to weigh by, the colours' plain mean.
    let clear_red = pixel(&[1.0, 0.0, 0.0, 0.0]);
    let clear_blue = pixel(&[0.0, 0.0, 1.0, 0.0]);
    let mean = average_layers(&clear_red, &clear_blue);
    assert!(max_abs_diff(&mean, &pixel(&[0.5, 0.0, 0.5, 0.0])) < 1e-6);
}

#[test]
fn the_mirror_image_reverses_columns_only() {
    let image = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([1, 2, 3]);
    let expected = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 5.0, 4.0, 3.0]).view([1, 2, 3]);
    assert!(max_abs_diff(&mirrored(&image), &expected) < 1e-6);
}
