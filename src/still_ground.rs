//! Alpha cleared on still ground: outside every mask, where the frame shows the background
//! estimate and at least half of the frames the median holds show it too, nothing crossed the
//! pixel and no layer holds anything there. The network's layers put soft alpha on such
//! ground (a blob below every object, flecks of the estimate's noise); in the element's
//! validation videos 38% of the pixels wrongly given to a layer lay there (docs/measurements.md,
//! sessions 56-57).
//!
//! Asking the median's frames to match as well keeps the shadow of a slow object whose
//! window-long stay put it into the estimate: there the frame matches the estimate, but the
//! older frames, which saw the ground before the shadow came, do not. The frames must be the
//! median's own: those of the clip window alone (three frames fewer, none of the oldest)
//! cleared such shadows and lost on a fresh validation set (session 56).
//!
//! The cleared pixels are taken out of the output only: the median's covers are the network's
//! layers as they were. Fed back, a dropped shadow entered the median, which then matched more
//! frames (-0.124 effect IoU, session 56).

use crate::cpu_slices::{bytes, floats};
use tch::{Device, Kind, Tensor};

/// Two 8-bit values within this many levels of each other, in every channel, match (camera
/// noise and compression stay within it; a shadow that matters does not).
pub const STILL_GROUND_TOLERANCE: u8 = 10;

/// The share of the median's frames that must match its estimate at a pixel for the ground
/// there to count as still (0.75 and 1 kept more false alpha; session 56).
pub const STILL_GROUND_SHARE: f64 = 0.5;

/// Per pixel, how many of `frames` (each planar [C, H, W] bytes, C = `channels`) lie within
/// `tolerance` of `image` (the same layout) in every channel. Saturates at 255 frames.
pub fn frames_matching<'a>(
    frames: impl IntoIterator<Item = &'a [u8]>,
    image: &[u8],
    channels: usize,
    tolerance: u8,
) -> Vec<u8> {
    assert!(
        channels > 0 && image.len().is_multiple_of(channels),
        "an image of {channels} planes"
    );
    let pixels = image.len() / channels;
    let mut counts = vec![0u8; pixels];
    let mut within = vec![0u8; pixels];
    for frame in frames {
        assert_eq!(
            frame.len(),
            image.len(),
            "a frame of another size than the image"
        );
        within.fill(1);
        for (plane, reference) in frame.chunks_exact(pixels).zip(image.chunks_exact(pixels)) {
            // Branch-free, so that the compiler vectorises it: at 1080p this is 16 frames of
            // three planes of two million pixels each.
            for ((w, &a), &b) in within.iter_mut().zip(plane).zip(reference) {
                *w &= (a.abs_diff(b) <= tolerance) as u8;
            }
        }
        for (count, &w) in counts.iter_mut().zip(&within) {
            *count = count.saturating_add(w);
        }
    }
    counts
}

/// [1, H, W] bool: the still ground of a frame [3, H, W] (in [0, 1]) whose label map is
/// `labels` [H, W] (0: no object), given `estimate` [3, H, W], the background its layers go
/// over, and `steady` [1, H, W] (bool), where enough of the median's frames match the estimate
/// (in the frame's view): no mask, and the frame within [`STILL_GROUND_TOLERANCE`] of the
/// estimate in every channel.
pub fn still_ground(frame: &Tensor, estimate: &Tensor, labels: &Tensor, steady: &Tensor) -> Tensor {
    let [h, w] = labels.size()[..] else {
        panic!("labels are [H, W]")
    };
    // Half a level more: both sides come from 8-bit values, the estimate through a resampling
    // or an exposure gain.
    let tolerance = (STILL_GROUND_TOLERANCE as f64 + 0.5) / 255.0;
    let matches = (frame - estimate)
        .abs()
        .amax([0].as_slice(), true)
        .le(tolerance);
    matches
        .logical_and(&labels.eq(0).view([1, h, w]))
        .logical_and(steady)
}

/// Clears every layer's alpha (`layers` [L, 4, H, W], straight alpha) on `still` [1, H, W]
/// (bool), and makes the residual `background` [3, H, W] the `frame` [3, H, W] there, so that
/// the layers over it still reproduce the frame (`reconstruction` [3, H, W] is the frame
/// there too).
pub fn clear_still_ground(
    layers: &mut Tensor,
    background: &mut Tensor,
    reconstruction: &mut Tensor,
    frame: &Tensor,
    still: &Tensor,
) {
    let kept = still.logical_not().to_kind(layers.kind());
    let mut alpha = layers.narrow(1, 3, 1);
    let cleared = &alpha * &kept;
    alpha.copy_(&cleared);
    *background = background.where_self(&still.logical_not(), frame);
    *reconstruction = reconstruction.where_self(&still.logical_not(), frame);
}

/// [1, H, W] bool: where at least `share` of the `held` frames matched, from their per-pixel
/// count `matching` ([`frames_matching`], [H, W] uint8 on the CPU), put on `device`.
pub fn steady_where(matching: &Tensor, held: usize, share: f64, device: Device) -> Tensor {
    let needed = (share * held as f64).ceil().max(1.0) as u8;
    let counts = bytes(matching);
    let steady: Vec<u8> = counts.iter().map(|&c| (c >= needed) as u8).collect();
    Tensor::from_slice(&steady)
        .view([1, matching.size()[0], matching.size()[1]])
        .to_kind(Kind::Bool)
        .to_device(device)
}

/// An image [C, H, W] in [0, 1] as the median's frames are held: planar bytes, rounded as
/// [`crate::eight_bit::quantise_all`] rounds them.
pub fn as_held_bytes(image: &Tensor) -> Vec<u8> {
    let image = image
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let mut out = vec![0u8; image.numel()];
    crate::eight_bit::quantise_all(floats(&image), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_matches_where_every_channel_is_within_the_tolerance() {
        // Two planes of three pixels: pixel 0 matches in both, pixel 1 is off in the second
        // plane, pixel 2 is exactly at the tolerance.
        let image = [100, 50, 20, 100, 50, 20];
        let frame = [105, 50, 30, 95, 61, 10];
        let other = [100, 50, 200, 100, 50, 20];
        assert_eq!(frames_matching([&frame[..]], &image, 2, 10), vec![1, 0, 1]);
        assert_eq!(
            frames_matching([&frame[..], &other[..]], &image, 2, 10),
            vec![2, 1, 1]
        );
    }

    #[test]
    fn steady_needs_the_share_of_the_frames_held() {
        let matching = Tensor::from_slice(&[0u8, 7, 8, 16]).view([2, 2]);
        let steady = steady_where(&matching, 16, 0.5, Device::Cpu);
        let got: Vec<bool> = Vec::try_from(steady.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![false, false, true, true]);
    }

    #[test]
    fn clearing_keeps_the_frame_reproduced() {
        let frame = Tensor::rand([3, 4, 4], (Kind::Float, Device::Cpu));
        let mut layers = Tensor::rand([2, 4, 4, 4], (Kind::Float, Device::Cpu));
        let mut background = Tensor::rand([3, 4, 4], (Kind::Float, Device::Cpu));
        let mut reconstruction = frame.shallow_clone().copy();
        let still = Tensor::rand([1, 4, 4], (Kind::Float, Device::Cpu)).gt(0.5);
        clear_still_ground(
            &mut layers,
            &mut background,
            &mut reconstruction,
            &frame,
            &still,
        );
        let alpha_on_still = layers
            .narrow(1, 3, 1)
            .masked_select(&still.unsqueeze(0).expand([2, 1, 4, 4], false));
        assert_eq!(alpha_on_still.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let shown = background.masked_select(&still.expand([3, 4, 4], false));
        let truth = frame.masked_select(&still.expand([3, 4, 4], false));
        assert!(shown.equal(&truth));
        assert!(reconstruction.equal(&frame));
    }
}
