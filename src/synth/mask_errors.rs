//! The errors real segmenters make, for the input masks of `world` scenes: holes, bleeding
//! past the edge, a few frames of lag, and jitter from frame to frame. The classic scenes keep
//! their one rough edit per object (`roughen` in `synth`).

use super::texture;
use rand::rngs::StdRng;
use rand::Rng;
use tch::{Kind, Tensor};

/// One object's visible masks [T, 1, H, W] in {0, 1}, as a segmenter might give them.
pub fn segmenter_masks(rng: &mut StdRng, masks: &Tensor) -> Tensor {
    let [t, _, h, w] = masks.size()[..] else {
        panic!("masks must be [T, 1, H, W]")
    };
    let mut out = masks.shallow_clone();
    if rng.random_bool(0.2) && t > 2 {
        // Lag: the segmenter runs a frame or two behind the video.
        let lag = rng.random_range(1..=2).min(t - 1);
        out = Tensor::cat(
            &[
                out.narrow(0, 0, 1).repeat([lag, 1, 1, 1]),
                out.narrow(0, 0, t - lag),
            ],
            0,
        );
    }
    match rng.random_range(0..4) {
        0 => {}
        1 => out = dilate(&out, [3, 5, 7][rng.random_range(0..3)]), // bleeding
        2 => out = dilate(&out.neg(), 3).neg(),                     // eroded edge
        _ => {
            // Jitter: each frame's mask shifted by up to 2 pixels.
            let shifted: Vec<Tensor> = (0..t)
                .map(|f| {
                    let (dy, dx) = (rng.random_range(-2..=2), rng.random_range(-2..=2));
                    out.get(f).roll([dy, dx], [1, 2])
                })
                .collect();
            out = Tensor::stack(&shifted, 0);
        }
    }
    if rng.random_bool(0.3) {
        // Holes: smooth blobs the segmenter missed inside the object.
        let cells = rng.random_range(4..10);
        let field = texture::smooth_noise(rng, 1, h, w, cells);
        let holes = field.gt(rng.random_range(0.55..0.8)).to_kind(Kind::Float);
        let holed = &out * holes.neg().g_add_scalar(1.0).unsqueeze(0);
        out = holed;
    }
    out.clamp(0.0, 1.0)
}

/// Max filter of size `k` over each frame.
fn dilate(masks: &Tensor, k: i64) -> Tensor {
    masks.max_pool2d([k, k], [1, 1], [k / 2, k / 2], [1, 1], false)
}
