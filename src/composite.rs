//! Back-to-front alpha compositing (supplementary Algorithm 1) and detail transfer.
//!
//! Everything here works in [0, 1] colour space. Layers are [B, L, ..., 4, H, W] (layer axis 1,
//! RGBA on axis -3, straight alpha); backgrounds and frames are [B, ..., 3, H, W].
//! Object 1 (index 0) is the back-most layer.

use tch::Tensor;

/// Maps network output in [-1, 1] to [0, 1].
pub fn to_unit(x: &Tensor) -> Tensor {
    x * 0.5 + 0.5
}

/// Maps [0, 1] to the network's [-1, 1].
pub fn to_signed(x: &Tensor) -> Tensor {
    x * 2.0 - 1.0
}

/// Splits [..., 4, H, W] RGBA into ([..., 3, H, W], [..., 1, H, W]).
pub fn split_rgba(rgba: &Tensor) -> (Tensor, Tensor) {
    (rgba.narrow(-3, 0, 3), rgba.narrow(-3, 3, 1))
}

/// Algorithm 1: recon = background; for i = 1..N back to front,
/// recon = a_i * rgb_i + (1 - a_i) * recon. (The supplementary's loop lacks `i += 1`.)
pub fn composite(layers: &Tensor, background: &Tensor) -> Tensor {
    let n = layers.size()[1];
    (0..n).fold(background.shallow_clone(), |recon, i| {
        let (rgb, alpha) = split_rgba(&layers.select(1, i));
        &alpha * rgb + (1.0 - &alpha) * recon
    })
}

/// Detail transfer (reference, at output time): hands the residual `frame - composite` back to
/// the colours of the layers and the background so that they composite to `frame` exactly,
/// full-resolution detail included, while every colour stays in [0, 1] (8-bit output).
///
/// In the composite each layer's colour counts with its visibility w_i = a_i prod_{j>i}(1 - a_j)
/// (its alpha times the transmittance of the layers in front) and the background's with
/// w_0 = prod_j(1 - a_j); the weights sum to one. A positive residual r moves every colour c
/// towards 1 by the same fraction, c + (1 - c) r / (1 - recon): the composite then rises by
/// exactly r, and the fraction is at most 1 because frame <= 1. A negative residual moves every
/// colour towards 0 by c r / recon. So where a layer is opaque and in front, its colour becomes
/// the frame; where every layer is clear, the background does; in between, by visibility.
///
/// `layers` [B, L, ..., 4, H, W] and `background`/`frame` in [0, 1]. Returns (layers, background).
pub fn detail_transfer(layers: &Tensor, background: &Tensor, frame: &Tensor) -> (Tensor, Tensor) {
    const EPS: f64 = 1e-12;
    // Fresh copies, transferred in place: full-size passes over the layers are what this
    // costs at 720p and above.
    let layers = layers.clamp(0.0, 1.0);
    let background = background.clamp(0.0, 1.0);
    let recon = composite(&layers, &background);
    let residual = frame - &recon;
    let up = residual.clamp_min(0.0) / recon.neg().g_add_scalar(1.0).clamp_min(EPS);
    let down = residual.neg().clamp_min(0.0) / recon.clamp_min(EPS);
    // c + (1 - c) up - c down = c (1 - up - down) + up.
    let keep = (&up + &down).neg().g_add_scalar(1.0);
    let mut rgb = layers.narrow(-3, 0, 3);
    let _ = rgb.g_mul_(&keep.unsqueeze(1)).g_add_(&up.unsqueeze(1));
    // The background may be shared by the frames (broadcast): not in place.
    (layers, background * keep + up)
}

/// Composited alpha used by the alpha regulariser (reference): A <- A (1 - a_i) + a_i * a_i,
/// back to front, starting from 0. Returns [B, ..., 1, H, W].
pub fn composite_alpha(layers: &Tensor) -> Tensor {
    let n = layers.size()[1];
    let first = split_rgba(&layers.select(1, 0)).1;
    (0..n).fold(first.zeros_like(), |acc, i| {
        let a = split_rgba(&layers.select(1, i)).1;
        acc * (1.0 - &a) + &a * &a
    })
}
