//! The background estimate brought to each frame's exposure. Cameras hunt for exposure: the
//! real clip's wall drifts by about 12 of 255 over its 217 frames (docs/measurements.md,
//! session 35). A median over many frames shows the scene at their typical exposure, so
//! without this a frame's difference to it (the network's input) and the clean background and
//! removals made from it carry that drift. The gain is the median of the frame's ratio to the
//! estimate over the pixels no mask covers, per channel (white balance drifts too), so that
//! objects and their effects, a minority of those pixels, do not move it.

use crate::composite::{to_signed, to_unit};
use crate::working::masks_cover;
use tch::{Kind, Tensor};

/// Gains outside this range are not taken for exposure (a light switched, a scene cut):
/// the estimate is left as it is there.
pub const GAIN_RANGE: (f64, f64) = (0.8, 1.25);

/// Background values below this (0-1) are too dark for a stable ratio and not read.
const DARKEST_READ: f64 = 0.05;

/// Fewer usable pixels than this leave the gain at 1 (a frame almost wholly covered).
const FEWEST_READ: i64 = 16;

/// Per channel, the median over `free` [H, W] (bool: no mask covers the pixel) of `frame` /
/// `background` (both [3, H, W] in [0, 1]): [3, 1, 1], 1 where out of [`GAIN_RANGE`] or
/// where too few pixels can be read.
pub fn exposure_gain(frame: &Tensor, background: &Tensor, free: &Tensor) -> Tensor {
    let gains: Vec<f32> = (0..3)
        .map(|c| {
            let estimate = background.get(c).to_kind(Kind::Float);
            let usable = free.logical_and(&estimate.gt(DARKEST_READ));
            let ratio = (frame.get(c).to_kind(Kind::Float) / estimate.clamp_min(DARKEST_READ))
                .masked_select(&usable);
            if ratio.numel() < FEWEST_READ as usize {
                return 1.0;
            }
            let gain = ratio.median().double_value(&[]);
            if (GAIN_RANGE.0..=GAIN_RANGE.1).contains(&gain) {
                gain as f32
            } else {
                1.0
            }
        })
        .collect();
    Tensor::from_slice(&gains)
        .view([3, 1, 1])
        .to_device(frame.device())
}

/// `background` [.., 3, H, W] in [0, 1] times `gain` [3, 1, 1], kept in [0, 1].
pub fn matched(background: &Tensor, gain: &Tensor) -> Tensor {
    // In place on the product: at 720p each full-size pass is a few milliseconds.
    (background * gain.to_kind(background.kind())).clamp_(0.0, 1.0)
}

/// `background` [1, 3, h, w] in [-1, 1] at the working size brought to the exposure of the
/// frame whose image and masks are `frame` [1, 3, h, w] and `masks` [L, 1, h, w]
/// ([`exposure_gain`], read where no mask covers): the matched background, and the gain that
/// made it (for the estimate at full size).
pub fn at_exposure_of(frame: &Tensor, masks: &Tensor, background: &Tensor) -> (Tensor, Tensor) {
    let free = masks_cover(masks).select(0, 0).logical_not();
    let background = to_unit(background);
    let gain = exposure_gain(
        &to_unit(&frame.select(0, 0)),
        &background.select(0, 0),
        &free,
    );
    (to_signed(&matched(&background, &gain)), gain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn scene() -> Tensor {
        Tensor::rand([3, 24, 32], (Kind::Float, Device::Cpu)) * 0.6 + 0.2
    }

    #[test]
    fn a_frame_darker_by_a_tenth_gives_that_gain_despite_an_uncovered_shadow() {
        let background = scene();
        let frame = &background * 0.9;
        // A shadow on a fifth of the free pixels: a minority, which the median ignores.
        let _ = frame.narrow(1, 0, 5).g_mul_scalar_(0.5);
        let free = Tensor::ones([24, 32], (Kind::Bool, Device::Cpu));
        let gain = exposure_gain(&frame, &background, &free);
        for c in 0..3 {
            let g = gain.double_value(&[c, 0, 0]);
            assert!((g - 0.9).abs() < 1e-3, "channel {c}: gain {g}");
        }
    }

    #[test]
    fn covered_pixels_are_not_read_and_a_scene_change_is_not_exposure() {
        let background = scene();
        let frame = background.copy();
        let _ = frame.narrow(2, 0, 24).fill_(1.0); // an object over three quarters
        let free = Tensor::ones([24, 32], (Kind::Bool, Device::Cpu));
        let _ = free.narrow(1, 0, 24).fill_(0);
        let gain = exposure_gain(&frame, &background, &free);
        assert!((gain.double_value(&[1, 0, 0]) - 1.0).abs() < 1e-6);

        let lights_off = &background * 0.3;
        let all = Tensor::ones([24, 32], (Kind::Bool, Device::Cpu));
        let gain = exposure_gain(&lights_off, &background, &all);
        assert_eq!(gain.double_value(&[0, 0, 0]), 1.0, "0.3 is out of range");
    }
}
