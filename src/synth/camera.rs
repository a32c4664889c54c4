//! What a camera does to a `world` scene's frames: exposure flicker, blur, sensor noise and
//! compression blocks. Applied to the frames only: the true layers and background stay clean,
//! as the layers a user wants are the scene's, not the camera's.

use super::texture;
use rand::rngs::StdRng;
use rand::Rng;
use tch::Tensor;

/// `frames` [T, 3, H, W] in [0, 1] as a camera would record them.
pub fn record(rng: &mut StdRng, frames: &Tensor) -> Tensor {
    let [t, c, h, w] = frames.size()[..] else {
        panic!("frames must be [T, 3, H, W]")
    };
    // Each step makes a new tensor: `frames` (the clean composite) is never written to.
    let mut out = frames.shallow_clone();
    if rng.random_bool(0.5) {
        // Auto-exposure hunting: a few percent of gain from frame to frame.
        let amount = rng.random_range(0.01..0.05);
        let gains: Vec<f32> = (0..t)
            .map(|_| 1.0 + rng.random_range(-amount..amount) as f32)
            .collect();
        let flickered = &out * Tensor::from_slice(&gains).view([t, 1, 1, 1]);
        out = flickered;
    }
    if rng.random_bool(0.3) {
        // Slight defocus or motion blur: a 3x3 box.
        out = out.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>);
    }
    if rng.random_bool(0.6) {
        let sigma = rng.random_range(0.003..0.03);
        let noisy = &out + texture::noise(rng, t * c, h, w).view([t, c, h, w]) * sigma;
        out = noisy;
    }
    if rng.random_bool(0.3) && h % 8 == 0 && w % 8 == 0 {
        // Block coding at a low rate: part of each 8x8 block's detail is lost to its mean.
        let blocks = out
            .avg_pool2d([8, 8], [8, 8], [0, 0], false, true, None::<i64>)
            .upsample_nearest2d([h, w], None, None);
        let loss = rng.random_range(0.1..0.35);
        out = &out * (1.0 - loss) + blocks * loss;
    }
    out.clamp(0.0, 1.0)
}
