//! The self-supervised losses of the coordination game (paper Sec. 3.3, Eq. 2-5,
//! supplementary Sec. 2), applied on hidden frames only.
//!
//! Shapes: `layers` [B, L, T, 4, H, W] RGBA in [-1, 1] (network output); `frames` and
//! `background` [B, T, 3, H, W] in [-1, 1] (the background may be [B, 1, 3, H, W]);
//! `masks` [B, L, T, 1, H, W] in {0, 1}; `visible` [B, T] in {0, 1}.
//! Every term is weighted by `1 - visible`, so frames the network saw cost nothing.

use crate::composite::{composite, composite_alpha, to_signed, to_unit};
use tch::{Kind, Tensor};

/// Overlap pixels (two or more masks) weigh this much in the reconstruction loss.
pub const OVERLAP_WEIGHT: f64 = 0.1;
/// Weight of the L1 part of the alpha regulariser (supplementary: gamma = 1).
pub const GAMMA: f64 = 1.0;
/// Weight of the whole alpha regulariser (supplementary Eq. 5: lambda_r = 0.05).
pub const LAMBDA_R: f64 = 0.05;

/// Hidden-frame weight [B, T] -> broadcastable [B, T, 1, 1, 1].
pub(crate) fn hidden_weight(visible: &Tensor) -> Tensor {
    let (b, t) = visible.size2().expect("visible is [B, T]");
    visible
        .to_kind(Kind::Float)
        .neg()
        .g_add_scalar(1.0)
        .view([b, t, 1, 1, 1])
}

/// Eq. 2: L1 between the composite of the predicted layers over the background and the frame,
/// in [-1, 1]. Pixels where two or more objects' masks overlap weigh 0.1. As in the reference,
/// the error is summed over RGB and divided by the summed (per-pixel) weights.
/// Returns (loss, reconstruction in [-1, 1] [B, T, 3, H, W]).
pub fn reconstruction_loss(
    layers: &Tensor,
    frames: &Tensor,
    background: &Tensor,
    masks: &Tensor,
    visible: &Tensor,
) -> (Tensor, Tensor) {
    let recon = to_signed(&composite(&to_unit(layers), &to_unit(background)));
    let overlap = masks
        .sum_dim_intlist(1, false, Kind::Float)
        .gt(1.0)
        .to_kind(Kind::Float); // [B, T, 1, H, W]
    let weights = hidden_weight(visible) * (1.0 - (1.0 - OVERLAP_WEIGHT) * overlap);
    let err = (&weights * (&recon - frames).abs()).sum(Kind::Float);
    (err / weights.sum(Kind::Float).clamp_min(1e-8), recon)
}

/// The two parts of the alpha regulariser (Eq. 3).
pub struct AlphaRegularization {
    /// Mean of the composited alpha A.
    pub l1: Tensor,
    /// Mean of the approximate L0 norm 2 * sigmoid(5 A) - 1.
    pub l0: Tensor,
}

impl AlphaRegularization {
    /// gamma * L1 + L0.
    pub fn total(&self) -> Tensor {
        &self.l1 * GAMMA + &self.l0
    }
}

/// Eq. 3 on the composited alpha A (A <- A (1 - a_i) + a_i^2, as in the reference). For layer
/// i the weight is 1 minus its occlusion by the masks of the layers in front of it (so the
/// layers do not pay for alpha an object in front explains), times the hidden-frame weight;
/// the means run over layers, frames and pixels. Unlike the reference, the weight is clamped at
/// 0 where several masks in front overlap, so it can never reward alpha.
pub fn alpha_regularization(
    layers: &Tensor,
    masks: &Tensor,
    visible: &Tensor,
) -> AlphaRegularization {
    let alpha = composite_alpha(&to_unit(layers)).unsqueeze(1); // [B, 1, T, 1, H, W]
    let masks = masks.to_kind(Kind::Float);
    // Sum over the layers strictly in front (higher index) of each layer.
    let in_front = masks.flip([1]).cumsum(1, Kind::Float).flip([1]) - &masks;
    let weight =
        in_front.neg().g_add_scalar(1.0).clamp_min(0.0) * hidden_weight(visible).unsqueeze(1);
    let pseudo_l0 = (&alpha * 5.0).sigmoid() * 2.0 - 1.0;
    AlphaRegularization {
        l1: (&weight * &alpha).mean(Kind::Float),
        l0: (&weight * pseudo_l0).mean(Kind::Float),
    }
}

/// Eq. 4, mask bootstrapping: mean of S * |alpha - M| in [-1, 1], with
/// S = H W / 2 * (M / (sum M + 1) + (1 - M) / (sum (1 - M) + 1)) balancing object and
/// non-object pixels of each mask.
pub fn mask_bootstrap_loss(layers: &Tensor, masks: &Tensor, visible: &Tensor) -> Tensor {
    let masks = masks.to_kind(Kind::Float);
    let size = masks.size();
    let (h, w) = (size[4], size[5]);
    let positives = masks.sum_dim_intlist([-1, -2].as_slice(), true, Kind::Float) + 1.0;
    let negatives =
        masks
            .neg()
            .g_add_scalar(1.0)
            .sum_dim_intlist([-1, -2].as_slice(), true, Kind::Float)
            + 1.0;
    let balance =
        (&masks / positives + masks.neg().g_add_scalar(1.0) / negatives) * ((h * w) as f64 * 0.5);
    let alpha = layers.narrow(3, 3, 1); // [-1, 1]
    let err = (alpha - to_signed(&masks)).abs();
    (hidden_weight(visible).unsqueeze(1) * balance * err).mean(Kind::Float)
}

/// lambda_m: multiplied by 0.1 at each of two steps (supplementary Sec. 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskWeightSchedule {
    pub initial: f64,
    pub decay_steps: [u64; 2],
}

impl MaskWeightSchedule {
    /// Pretraining: lambda_m = 1, times 0.1 at 1k and at 2k steps.
    pub fn pretraining() -> Self {
        Self {
            initial: 1.0,
            decay_steps: [1000, 2000],
        }
    }

    /// Test-time training of `total_steps` N: lambda_m = `initial` (the paper: 0.1), times 0.1
    /// at 0.1N and 0.2N.
    pub fn test_time(total_steps: u64, initial: f64) -> Self {
        Self {
            initial,
            decay_steps: [total_steps / 10, total_steps / 5],
        }
    }

    /// lambda_m at `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        let decays = self.decay_steps.iter().filter(|&&s| step >= s).count();
        self.initial * 0.1f64.powi(decays as i32)
    }
}

/// The terms of Eq. 5 for one batch.
pub struct LossTerms {
    pub total: Tensor,
    pub reconstruction: Tensor,
    pub alpha_regularization: Tensor,
    pub mask: Tensor,
    /// The composite of the predicted layers, [B, T, 3, H, W] in [-1, 1].
    pub reconstruction_image: Tensor,
}

/// Eq. 5: E_recon + lambda_r * E_alpha + lambda_m * E_mask.
pub fn total_loss(
    layers: &Tensor,
    frames: &Tensor,
    background: &Tensor,
    masks: &Tensor,
    visible: &Tensor,
    lambda_m: f64,
) -> LossTerms {
    let (reconstruction, reconstruction_image) =
        reconstruction_loss(layers, frames, background, masks, visible);
    let alpha_regularization = alpha_regularization(layers, masks, visible).total();
    let mask = mask_bootstrap_loss(layers, masks, visible);
    let total = &reconstruction + &alpha_regularization * LAMBDA_R + &mask * lambda_m;
    LossTerms {
        total,
        reconstruction,
        alpha_regularization,
        mask,
        reconstruction_image,
    }
}
