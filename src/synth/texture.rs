//! Random textures for backgrounds and objects: gradients, tiles, smooth and fine noise.
//! Randomness comes from the caller's seeded generator, so scenes are reproducible.

use rand::rngs::StdRng;
use rand::Rng;
use tch::{Device, Kind, Tensor};

fn opts() -> (Kind, Device) {
    (Kind::Float, Device::Cpu)
}

/// A random colour [3, 1, 1] in [lo, hi].
pub fn colour(rng: &mut StdRng, lo: f32, hi: f32) -> Tensor {
    let c: Vec<f32> = (0..3).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_slice(&c).view([3, 1, 1])
}

/// Uniform noise [c, h, w] from the seeded generator.
pub fn noise(rng: &mut StdRng, c: i64, h: i64, w: i64) -> Tensor {
    let v: Vec<f32> = (0..c * h * w)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    Tensor::from_slice(&v).view([c, h, w])
}

/// Smooth noise: a coarse random grid upsampled bilinearly.
pub fn smooth_noise(rng: &mut StdRng, c: i64, h: i64, w: i64, cells: i64) -> Tensor {
    noise(rng, c, cells, cells)
        .unsqueeze(0)
        .upsample_bilinear2d([h, w], false, None, None)
        .squeeze_dim(0)
}

/// Normalised coordinates ([1, h, w] each) in [0, 1].
pub fn grid(h: i64, w: i64) -> (Tensor, Tensor) {
    let ys = Tensor::arange(h, opts())
        .view([1, h, 1])
        .expand([1, h, w], false)
        / (h - 1).max(1) as f64;
    let xs = Tensor::arange(w, opts())
        .view([1, 1, w])
        .expand([1, h, w], false)
        / (w - 1).max(1) as f64;
    (ys, xs)
}

/// A background [3, h, w] in [0, 1]: a two-colour gradient at a random angle, often tiles,
/// smooth blotches and fine grain.
pub fn background(rng: &mut StdRng, h: i64, w: i64) -> Tensor {
    let (ys, xs) = grid(h, w);
    let angle: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    let ramp = (&xs * angle.cos() + &ys * angle.sin() + 1.0) / 3.0;
    let (a, b) = (colour(rng, 0.15, 0.85), colour(rng, 0.15, 0.85));
    let mut bg: Tensor = &a * (1.0 - &ramp) + &b * &ramp;
    if rng.random_bool(0.5) {
        let period = rng.random_range(6.0..24.0);
        let contrast = rng.random_range(0.03..0.15);
        let tiles = ((&xs * (w as f64 / period)).floor() + (&ys * (h as f64 / period)).floor())
            .remainder(2.0);
        bg += (tiles - 0.5) * contrast;
    }
    let cells = rng.random_range(3..8);
    bg += smooth_noise(rng, 3, h, w, cells) * rng.random_range(0.02..0.12);
    bg += noise(rng, 1, h, w) * rng.random_range(0.0..0.03);
    bg.clamp(0.0, 1.0)
}

/// An object's colour field [3, h, w]: a colour with stripes or blotches.
pub fn object_colour(rng: &mut StdRng, h: i64, w: i64) -> Tensor {
    let base = colour(rng, 0.05, 0.95);
    let (ys, xs) = grid(h, w);
    let pattern = if rng.random_bool(0.5) {
        let freq = rng.random_range(8.0..30.0);
        let angle: f64 = rng.random_range(0.0..std::f64::consts::PI);
        ((&xs * angle.cos() + &ys * angle.sin()) * freq).sin() * rng.random_range(0.0..0.15)
    } else {
        let cells = rng.random_range(4..10);
        smooth_noise(rng, 1, h, w, cells) * rng.random_range(0.0..0.2)
    };
    (base + pattern).clamp(0.0, 1.0)
}
