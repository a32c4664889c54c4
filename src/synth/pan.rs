//! A camera that pans across a scene (`omnimatte synth --pan`): a window that moves by whole
//! pixels over a larger rendering of the scene, so that new ground comes in on one side as old
//! ground leaves on the other, and nothing is resampled. Each frame has its own true background.

use super::{generate, Scene, SynthConfig};
use crate::composite::composite;
use tch::{Kind, Tensor};

/// A scene seen through a moving window: `scene` holds what the window shows (its
/// `background` is the first frame's), `backgrounds` [T, 3, H, W] what it shows behind the
/// objects in each frame.
pub struct PannedScene {
    pub scene: Scene,
    pub backgrounds: Tensor,
}

/// The scene of `seed` rendered large enough for a `cfg.height` x `cfg.width` window to move
/// `speed` pixels a frame over it (down and right; negative: up and left), seen through that
/// window.
pub fn generate_panned(cfg: &SynthConfig, seed: u64, speed: [f64; 2]) -> PannedScene {
    let travel = speed.map(|v| travel(v, cfg.frames - 1));
    let grown = SynthConfig {
        height: cfg.height + travel[0],
        width: cfg.width + travel[1],
        ..cfg.clone()
    };
    window(&generate(&grown, seed), [cfg.height, cfg.width], speed)
}

/// Whole pixels a window moving `speed` a frame travels in `frames` frames.
fn travel(speed: f64, frames: i64) -> i64 {
    (speed.abs() * frames as f64).round() as i64
}

/// Where the window's top (or left) edge is at frame `t`: from one end of the `span` it can
/// travel towards the other.
fn offset(speed: f64, t: i64, span: i64) -> i64 {
    let moved = travel(speed, t).min(span);
    match speed >= 0.0 {
        true => moved,
        false => span - moved,
    }
}

/// What a `size` window moving `speed` pixels a frame sees of `scene` (whose frames must be
/// large enough for the whole travel). An object the window never shows has no mask: its layer
/// goes into the backgrounds, as a user who cannot mask it sees its effects (composited behind
/// the layers kept, which is exact unless its effects overlap an object behind it).
pub fn window(scene: &Scene, size: [i64; 2], speed: [f64; 2]) -> PannedScene {
    let [_, _, big_h, big_w] = scene.frames.size()[..] else {
        panic!("frames must be [T, 3, H, W]")
    };
    let (t_len, [h, w]) = (scene.frames.size()[0], size);
    let span = [big_h - h, big_w - w];
    assert!(
        span[0] >= travel(speed[0], t_len - 1) && span[1] >= travel(speed[1], t_len - 1),
        "a {big_h}x{big_w} scene is too small for a {h}x{w} window moving {speed:?} a frame"
    );
    // Each frame's view of a tensor whose dimension `time` counts frames.
    let seen = |x: &Tensor, time: i64| {
        let views: Vec<Tensor> = (0..t_len)
            .map(|t| {
                let (y, x0) = (offset(speed[0], t, span[0]), offset(speed[1], t, span[1]));
                x.select(time, t).narrow(-2, y, h).narrow(-1, x0, w)
            })
            .collect();
        Tensor::stack(&views, time)
    };
    let masks = seen(&scene.masks, 1);
    let layers = seen(&scene.layers, 1);
    let background = scene
        .background
        .unsqueeze(0)
        .expand([t_len, -1, -1, -1], false);
    let backgrounds = seen(&background, 0);
    let (shown, unseen): (Vec<i64>, Vec<i64>) =
        (0..masks.size()[0]).partition(|&k| masks.get(k).sum(Kind::Float).double_value(&[]) > 0.0);
    let pick = |x: &Tensor, which: &[i64]| x.index_select(0, &Tensor::from_slice(which));
    let backgrounds = match unseen.is_empty() {
        true => backgrounds,
        // composite takes [B, L, ...]: the frames are the batch.
        false => composite(&pick(&layers, &unseen).transpose(0, 1), &backgrounds),
    };
    PannedScene {
        scene: Scene {
            frames: seen(&scene.frames, 0),
            background: backgrounds.get(0),
            layers: pick(&layers, &shown),
            masks: pick(&masks, &shown),
            regions: pick(&seen(&scene.regions, 1), &shown),
            effects: scene.effects,
        },
        backgrounds,
    }
}
