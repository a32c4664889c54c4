//! Alpha cleared on still ground: outside every mask, where the frame shows the background
//! estimate and at least half of the frames the median holds show it too, nothing crossed the
//! pixel and no layer holds anything there. The network's layers put soft alpha on such
//! ground (a blob below every object, flecks of the estimate's noise); in the element's
//! validation videos 38% of the pixels wrongly given to a layer lay there (docs/measurements.md,
//! sessions 56-57).
//!
//! The frames are compared as the median holds them (8 bits, in the view it works in) with
//! its estimate read after the frame's layers gave their covers: where the layers of this frame
//! and of those before it agree on an effect, the estimate leaves it out, the frame does not
//! match, and the effect stays. Asking the median's frames to match as well keeps the shadow
//! of a slow object whose stay put it into the estimate: the older frames, which saw the
//! ground before the shadow came, do not match. The frames must be the median's own: those of
//! the clip window alone (three frames fewer, none of the oldest) cleared such shadows and
//! lost on a fresh validation set (session 56).
//!
//! The cleared pixels are taken out of the output only: the median's covers are the network's
//! layers as they were, and reading the estimate leaves the median as it is. Fed back, a
//! dropped shadow entered the median, which then matched more frames (-0.124 effect IoU,
//! session 56).

use crate::stabilise::CameraShift;
use tch::Tensor;

/// A pixel of a frame matches the estimate where their differences, summed over the
/// channels, are at most this many levels of 255 (the noise of a still camera; a uniform
/// darkening of 4 levels does not match). The largest channel's difference within 10 cleared
/// the faint shadows the network had right: +0.011 effect IoU against +0.019 on eight
/// validation videos, recall beyond the masks -0.045 against -0.015 (session 57).
pub const STILL_GROUND_TOLERANCE: u16 = 10;

/// The share of the median's frames that must match its estimate at a pixel for the ground
/// there to count as still (0.75 and 1 kept more false alpha; session 56).
pub const STILL_GROUND_SHARE: f64 = 0.5;

/// Per pixel (1 or 0), whether the frame `frames[own]` and at least `needed` of `frames`
/// (each planar [C, H, W] bytes, C = `channels`) lie within `tolerance` of `image` (the same
/// layout), their differences summed over the channels: the ground that is still in the
/// view the frames are in. Work is split over `threads` threads by bands of pixels.
pub fn matching_ground(
    frames: &[&[u8]],
    own: usize,
    image: &[u8],
    channels: usize,
    tolerance: u16,
    needed: usize,
    threads: usize,
) -> Vec<u8> {
    assert!(
        channels > 0 && image.len().is_multiple_of(channels),
        "an image of {channels} planes"
    );
    assert!(own < frames.len(), "the own frame is one of the frames");
    for frame in frames {
        assert_eq!(
            frame.len(),
            image.len(),
            "a frame of another size than the image"
        );
    }
    let pixels = image.len() / channels;
    let mut still = vec![0u8; pixels];
    let band = pixels.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = still
            .chunks_mut(band)
            .enumerate()
            .map(|(i, out)| {
                let start = i * band;
                scope.spawn(move || {
                    let len = out.len();
                    let planes = |data| planes_of(data, channels, pixels, start..start + len);
                    let reference = planes(image);
                    let mut distance = vec![0u16; out.len()];
                    let mut count = vec![0u8; out.len()];
                    let mut own_matches = vec![0u8; out.len()];
                    for (index, frame) in frames.iter().enumerate() {
                        distance.fill(0);
                        for (plane, reference) in planes(frame).iter().zip(&reference) {
                            // Branch-free, so that the compiler vectorises it: at 1080p this
                            // is 16 frames of three planes of two million pixels each.
                            for ((d, &a), &b) in distance.iter_mut().zip(*plane).zip(*reference) {
                                *d += a.abs_diff(b) as u16;
                            }
                        }
                        for (n, &d) in count.iter_mut().zip(&distance) {
                            *n = n.saturating_add((d <= tolerance) as u8);
                        }
                        if index == own {
                            for (m, &d) in own_matches.iter_mut().zip(&distance) {
                                *m = (d <= tolerance) as u8;
                            }
                        }
                    }
                    for ((s, &n), &m) in out.iter_mut().zip(&count).zip(&own_matches) {
                        *s = m & (n as usize >= needed) as u8;
                    }
                })
            })
            .collect();
        // Joined before the scope ends (see `crate::median`).
        for handle in handles {
            handle.join().expect("a still-ground thread panicked");
        }
    });
    still
}

/// The pixels `at` of each of the `channels` planes of `data` (planar, `pixels` a plane).
fn planes_of(
    data: &[u8],
    channels: usize,
    pixels: usize,
    at: std::ops::Range<usize>,
) -> Vec<&[u8]> {
    (0..channels)
        .map(|c| &data[c * pixels + at.start..c * pixels + at.end])
        .collect()
}

/// The frames of `held` that must match for a share `share` of them.
pub fn frames_needed(held: usize, share: f64) -> usize {
    ((share * held as f64).ceil() as usize).max(1)
}

/// [1, H, W] bool: the still ground of a frame whose label map is `labels` [H, W] (0: no
/// object), from `seen` [1, H, W] (bool), where the frame and enough of the median's frames
/// match its estimate in the view the median works in, which `shift` moves the frame onto:
/// moved back to where the frame shows it, and outside every mask.
pub fn still_ground(seen: &Tensor, labels: &Tensor, shift: CameraShift) -> Tensor {
    let [h, w] = labels.size()[..] else {
        panic!("labels are [H, W]")
    };
    let back = shift.inverse();
    let shown = back
        .align_nearest(seen)
        .logical_and(&back.unseen(h, w, seen.device()).logical_not());
    shown.logical_and(&labels.eq(0).view([1, h, w]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn still_ground_is_where_the_own_frame_and_enough_frames_match_summed_over_the_channels() {
        // Two planes of four pixels. The own frame (0) is off by 5 in each plane at pixel 0
        // (10 in all: matches), by 11 in the second alone at pixel 1, by 6 and 5 at pixel 2,
        // exactly at pixel 3; frame 1 matches at pixels 0, 1 and 2, frame 2 nowhere.
        let image = [100, 50, 20, 7, 100, 50, 20, 7];
        let own = [105, 50, 26, 7, 95, 61, 15, 7];
        let other = [100, 50, 20, 200, 100, 50, 20, 200];
        let far = [0, 0, 0, 200, 0, 0, 0, 200];
        let frames = [&own[..], &other[..], &far[..]];
        let still = |tolerance, needed, threads| {
            matching_ground(&frames, 0, &image, 2, tolerance, needed, threads)
        };
        for threads in [1, 2, 3, 8] {
            assert_eq!(still(10, 1, threads), vec![1, 0, 0, 1]);
            assert_eq!(still(10, 2, threads), vec![1, 0, 0, 0]);
            assert_eq!(still(11, 2, threads), vec![1, 1, 1, 0]);
            assert_eq!(still(11, 3, threads), vec![0, 0, 0, 0]);
        }
    }

    #[test]
    fn half_of_the_frames_are_needed_at_least_one() {
        assert_eq!(frames_needed(16, 0.5), 8);
        assert_eq!(frames_needed(15, 0.5), 8);
        assert_eq!(frames_needed(1, 0.5), 1);
        assert_eq!(frames_needed(0, 0.5), 1);
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
