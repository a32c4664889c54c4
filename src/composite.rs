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

/// Detail transfer (reference, at output time): the residual `frame - composite` is added
/// to the colour of every layer and of the background. In the composite each layer's colour
/// counts with its visibility a_i * prod_{j>i}(1 - a_j) and the background's with its
/// transmittance prod_j(1 - a_j); these weights sum to one, so the new layers composite back
/// to `frame` exactly. Where a layer is opaque and in front, the residual (full-resolution
/// detail the network missed) lands in that layer; where every layer is clear, in the background.
///
/// Returns (layers, background) with the residual added. Colours may leave [0, 1] slightly;
/// clamp only when writing 8-bit output.
pub fn detail_transfer(layers: &Tensor, background: &Tensor, frame: &Tensor) -> (Tensor, Tensor) {
    let residual = frame - composite(layers, background);
    let (rgb, alpha) = split_rgba(layers);
    let rgb = rgb + residual.unsqueeze(1);
    (Tensor::cat(&[rgb, alpha], -3), background + residual)
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
