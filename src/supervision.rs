//! A supervised term for pretraining on synthetic scenes, beside the game's self-supervised
//! losses (Eq. 5). Not in the paper: the reference pretrains on 60k steps of batch 64, and the
//! game alone, at this project's ~0.2% of that compute, learnt each generator's look instead
//! of "an object owns its shadow" (docs/training.md). Synthetic scenes know every layer, so
//! pretraining may say so directly. Test-time training on real video has no ground truth and
//! keeps the game's losses only.
//!
//! E_sup = mean |a - a*| + mean |a c - a* c*| over every frame (hidden and visible: the layer
//! of a visible frame is as unknown to the network as that of a hidden one), every object and
//! pixel, in [0, 1] colour; premultiplied colour so that colour under zero alpha costs nothing.
//! [`SupervisedFrames::Seen`] pays it on the frames the network sees only (a hidden frame's
//! effects can only be guessed from the masks, and the L1 guess is a blur of where effects
//! usually fall); tried in sitting 10 of docs/training.md, it lowered the validation score.
//!
//! [`SupervisionWeighting::RegionBalanced`] weighs pixels by region instead of by area: the
//! object's input mask, its effects outside the mask (true alpha above
//! [`EFFECT_ALPHA`]), and the rest each count as much as the others. Over the whole frame an
//! effect is a few percent of the pixels, so the uniform mean barely asks for it.

use crate::composite::to_unit;
use tch::{Kind, Tensor};

/// Ground-truth layers [B, L, T, 4, H, W] straight RGBA in [0, 1] -> premultiplied RGBA.
pub fn premultiply(layers: &Tensor) -> Tensor {
    let rgb = layers.narrow(-3, 0, 3);
    let alpha = layers.narrow(-3, 3, 1);
    Tensor::cat(&[&rgb * &alpha, alpha], -3)
}

/// How E_sup weighs its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SupervisionWeighting {
    /// Every pixel alike (the mean over the frame).
    #[default]
    Uniform,
    /// Mean inside the input mask + mean over the effects outside it + mean over the rest.
    RegionBalanced,
    /// The uniform mean plus `regions` times the region-balanced sum: the effects and the
    /// object weigh more than their area, less than in `RegionBalanced`.
    Mixed { regions: f64 },
}

impl std::str::FromStr for SupervisionWeighting {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "region-balanced" => Ok(Self::RegionBalanced),
            other => match other.strip_prefix("mixed:").map(str::parse::<f64>) {
                Some(Ok(regions)) if regions >= 0.0 => Ok(Self::Mixed { regions }),
                _ => anyhow::bail!(
                    "unknown weighting {other:?}: expected uniform, region-balanced or mixed:W (W >= 0)"
                ),
            },
        }
    }
}

/// Which frames of a clip E_sup is paid on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupervisedFrames {
    /// Every frame, hidden or seen.
    #[default]
    All,
    /// The frames whose image the network sees (hidden frames get the game's losses only).
    Seen,
}

impl std::str::FromStr for SupervisedFrames {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "all" => Ok(Self::All),
            "seen" => Ok(Self::Seen),
            other => anyhow::bail!("unknown supervised frames {other:?}: expected all or seen"),
        }
    }
}

impl SupervisedFrames {
    /// The frames counted, [B, 1, T, 1, 1, 1] in {0, 1}, from `visible` [B, T].
    pub fn counted(&self, visible: &Tensor) -> Tensor {
        let [b, t] = visible
            .size2()
            .map(|(b, t)| [b, t])
            .expect("visible is [B, T]");
        let counted = match self {
            Self::All => visible.ones_like(),
            Self::Seen => visible.shallow_clone(),
        };
        counted.to_kind(Kind::Float).view([b, 1, t, 1, 1, 1])
    }
}

/// True alpha above which a pixel outside the input mask belongs to the object's effects.
pub const EFFECT_ALPHA: f64 = 0.05;

/// E_sup between the network's `layers` [B, L, T, 4, H, W] in [-1, 1] (straight alpha) and the
/// `targets` of the same shape, premultiplied RGBA in [0, 1].
pub fn supervised_layer_loss(layers: &Tensor, targets: &Tensor) -> Tensor {
    pixel_error(layers, targets).mean(Kind::Float)
}

/// Per pixel, [B, L, T, 1, H, W]: the alpha error plus the mean premultiplied colour error, so
/// that its mean is E_sup (the mean alpha error plus the mean colour error).
fn pixel_error(layers: &Tensor, targets: &Tensor) -> Tensor {
    let predicted = premultiply(&to_unit(layers));
    (predicted.narrow(-3, 3, 1) - targets.narrow(-3, 3, 1)).abs()
        + (predicted.narrow(-3, 0, 3) - targets.narrow(-3, 0, 3))
            .abs()
            .mean_dim(-3, true, Kind::Float)
}

/// E_sup with `weighting` over the `counted` frames ([`SupervisedFrames::counted`],
/// [B, 1, T, 1, 1, 1] in {0, 1}); `masks` [B, L, T, 1, H, W] are the input masks in {0, 1}
/// (used by the region-balanced weighting only).
pub fn weighted_layer_loss(
    layers: &Tensor,
    targets: &Tensor,
    masks: &Tensor,
    weighting: SupervisionWeighting,
    counted: &Tensor,
) -> Tensor {
    let error = pixel_error(layers, targets);
    let counted = counted.expand_as(&error);
    let uniform = || (&error * &counted).sum(Kind::Float) / counted.sum(Kind::Float).clamp_min(1.0);
    match weighting {
        SupervisionWeighting::Uniform => uniform(),
        SupervisionWeighting::RegionBalanced => region_balanced(&error, targets, masks, &counted),
        SupervisionWeighting::Mixed { regions } => {
            uniform() + region_balanced(&error, targets, masks, &counted) * regions
        }
    }
}

/// The mean of the per-pixel `error` inside the input mask + over the effects outside it +
/// over the rest, on the `counted` pixels.
fn region_balanced(error: &Tensor, targets: &Tensor, masks: &Tensor, counted: &Tensor) -> Tensor {
    let inside = masks.to_kind(Kind::Float);
    let effects = targets
        .narrow(-3, 3, 1)
        .gt(EFFECT_ALPHA)
        .to_kind(Kind::Float)
        * (1.0 - &inside);
    let rest = (1.0 - &inside) * (1.0 - &effects);
    let region_mean = |region: &Tensor| {
        let region = region * counted;
        (error * &region).sum(Kind::Float) / (region.sum(Kind::Float) + 1.0)
    };
    region_mean(&inside) + region_mean(&effects) + region_mean(&rest)
}

/// lambda_s: the weight of E_sup, constant until `fade_from`, then decayed linearly to
/// `final_fraction` of itself at `fade_to` (the game's losses take over as it fades).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupervisionSchedule {
    pub initial: f64,
    pub fade_from: u64,
    pub fade_to: u64,
    pub final_fraction: f64,
}

impl SupervisionSchedule {
    /// No supervision: the paper's losses only.
    pub fn off() -> Self {
        Self::constant(0.0)
    }

    /// The same weight at every step.
    pub fn constant(weight: f64) -> Self {
        Self {
            initial: weight,
            fade_from: u64::MAX,
            fade_to: u64::MAX,
            final_fraction: 1.0,
        }
    }

    /// lambda_s at `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step <= self.fade_from {
            return self.initial;
        }
        if step >= self.fade_to {
            return self.initial * self.final_fraction;
        }
        let progress = (step - self.fade_from) as f64 / (self.fade_to - self.fade_from) as f64;
        self.initial * (1.0 - progress * (1.0 - self.final_fraction))
    }
}
