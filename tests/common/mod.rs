//! Helpers shared by the integration tests: small real tensors, built by hand.
#![allow(dead_code)]

use gstomnimatte::model::{ModelConfig, OmnimatteNet};
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

/// libtorch has one global random generator and the test harness runs tests on several
/// threads: whatever draws random numbers and must be reproducible holds this lock from
/// seeding to the last draw.
static RANDOM_GENERATOR: Mutex<()> = Mutex::new(());

/// Runs `draw` right after seeding libtorch's generator with `seed`, with no other test
/// drawing in between.
pub fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    let _only_us = RANDOM_GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed);
    draw()
}

/// A freshly initialised network at the default configuration, seeded.
pub fn seeded_net(seed: i64) -> (nn::VarStore, OmnimatteNet) {
    seeded(seed, || {
        let vs = nn::VarStore::new(Device::Cpu);
        let net =
            OmnimatteNet::new(&vs.root(), ModelConfig::default()).expect("default config is valid");
        (vs, net)
    })
}

/// A tiny scene with an effect: a square object moving right over a gradient background,
/// casting a dark shadow to its lower right. Returns (frames [1, T, 3, H, W] in [-1, 1],
/// masks [1, 1, T, 1, H, W], background [1, 1, 3, H, W] in [-1, 1]).
pub fn square_with_shadow(t: i64, h: i64, w: i64) -> (Tensor, Tensor, Tensor) {
    let opts = (Kind::Float, Device::Cpu);
    let ys = Tensor::arange(h, opts).view([1, h, 1]) / h as f64;
    let xs = Tensor::arange(w, opts).view([1, 1, w]) / w as f64;
    let plane = |t: Tensor| t.expand([1, h, w], false);
    let bg = Tensor::cat(
        &[
            plane(&ys * 0.6 + 0.2),
            plane(&xs * 0.6 + 0.2),
            (&ys + &xs) * 0.3 + 0.2,
        ],
        0,
    ); // [3, H, W] in [0, 1]
    let size = h / 4;
    let mut frames = Vec::new();
    let mut masks = Vec::new();
    for i in 0..t {
        // Moves 3 px a frame, wrapping around before the shadow leaves the picture.
        let x0 = 4 + (3 * i) % (w - size - 8);
        let y0 = h / 4;
        let frame = bg.copy();
        // Shadow: offset down-right, 50% darker, not part of the mask.
        let _ = frame
            .narrow(1, y0 + 3, size)
            .narrow(2, x0 + 3, size)
            .g_mul_scalar_(0.5);
        frame
            .narrow(1, y0, size)
            .narrow(2, x0, size)
            .copy_(&Tensor::from_slice(&[0.9f32, 0.2, 0.1]).view([3, 1, 1]));
        let mask = Tensor::zeros([1, h, w], opts);
        let _ = mask.narrow(1, y0, size).narrow(2, x0, size).fill_(1.0);
        frames.push(frame);
        masks.push(mask);
    }
    let frames = Tensor::stack(&frames, 0).unsqueeze(0) * 2.0 - 1.0;
    let masks = Tensor::stack(&masks, 0).view([1, 1, t, 1, h, w]);
    (frames, masks, (bg * 2.0 - 1.0).view([1, 1, 3, h, w]))
}

/// Largest absolute difference between two tensors.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// One pixel [C, 1, 1] of the given channel values (an RGB colour or an RGBA layer).
pub fn pixel(values: &[f32]) -> Tensor {
    Tensor::from_slice(values).view([values.len() as i64, 1, 1])
}
