//! A test-time term, not in the paper: objects opaque deep inside their masks (on by default
//! in test-time training since session 21: `defaults::TTT_INTERIOR_OPACITY`).
//!
//! The paper's mask term (Eq. 4) is decayed to a hundredth of its weight by 0.2 N of test-time
//! training, after which nothing but the reconstruction holds an object opaque in its own layer;
//! on unfamiliar textures part of the object is explained as well by the background, and the
//! network's alpha on the objects falls (docs/measurements.md, sessions 15-17). This term keeps
//! the pull towards alpha 1 where the mask is trustworthy: its interior, eroded by
//! [`EROSION_RADIUS`] pixels, so that a mask that bleeds past the object's edge or lags a
//! little behind it does not ask for opacity on the background; of an object thinner than
//! that, its middle line.

use crate::composite::to_unit;
use crate::loss::hidden_weight;
use tch::{Kind, Tensor};

/// Pixels taken off the mask's edge. Segmenters bleed or jitter by a few pixels at 128x224
/// (the synthetic errors: up to 3 pixels of bleeding, 2 of jitter).
pub const EROSION_RADIUS: i64 = 3;

/// The interior of `masks` [.., 1, H, W] in {0, 1}: pixels at least `radius` pixels (Chebyshev
/// distance) inside the mask, or, in a frame where an object is thinner than that (a walking
/// person's limbs are 2 to 6 pixels wide at 128x224), its deepest pixels, its middle line:
/// eroding such an object by `radius` would leave nothing, and the term would ask nothing of it.
pub fn interior(masks: &Tensor, radius: i64) -> Tensor {
    let size = masks.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    // Erode a pixel at a time; where a frame's object would vanish, keep the last erosion
    // that held something (erosions only shrink, so deeper ones are empty too).
    let mut inner = masks.to_kind(Kind::Float).view([-1, 1, h, w]);
    for _ in 0..radius {
        let deeper = erode_by_one(&inner);
        let vanished = deeper.amax([-2, -1], true).neg().g_add_scalar(1.0);
        inner = &deeper + vanished * &inner;
    }
    inner.view(size.as_slice())
}

/// One pixel off the edge of `masks` [N, 1, H, W]: the complement of a 3x3 dilation of the
/// complement. Max pooling pads with -inf, so the image border does not erode an object that
/// leaves the frame.
fn erode_by_one(masks: &Tensor) -> Tensor {
    masks
        .neg()
        .g_add_scalar(1.0)
        .max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false)
        .neg()
        .g_add_scalar(1.0)
}

/// Mean of 1 - alpha over the masks' interiors on hidden frames: `layers` [B, L, T, 4, H, W]
/// in [-1, 1], `masks` [B, L, T, 1, H, W], `visible` [B, T]. Zero where no interior is hidden.
pub fn interior_opacity_loss(layers: &Tensor, masks: &Tensor, visible: &Tensor) -> Tensor {
    let weight = interior(masks, EROSION_RADIUS) * hidden_weight(visible).unsqueeze(1);
    let transparency = to_unit(&layers.narrow(3, 3, 1)).neg().g_add_scalar(1.0);
    (&weight * transparency).sum(Kind::Float) / weight.sum(Kind::Float).clamp_min(1.0)
}
