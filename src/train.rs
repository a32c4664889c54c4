//! One trainer for pretraining and test-time training: the self-supervised coordination game
//! (Eq. 5) optimised with AdamW (supplementary Sec. 3).

use crate::adamw::{AdamW, AdamWConfig};
use crate::interior_opacity::interior_opacity_loss;
use crate::loss::{total_loss, MaskWeightSchedule};
use crate::model::OmnimatteNet;
use crate::supervision::{
    weighted_layer_loss, SupervisedFrames, SupervisionSchedule, SupervisionWeighting,
};
use std::path::Path;
use tch::nn;
use tch::Tensor;

/// A batch of clips. Shapes as in [`crate::loss`]: frames [B, T, 3, H, W] and background
/// [B, 1 or T, 3, H, W] in [-1, 1], masks [B, L, T, 1, H, W] in {0, 1}, visible [B, T].
pub struct Batch {
    pub frames: Tensor,
    pub masks: Tensor,
    pub background: Tensor,
    pub visible: Tensor,
    /// The true layers where they are known (synthetic scenes): [B, L, T, 4, H, W],
    /// premultiplied RGBA in [0, 1] (see [`crate::supervision`]).
    pub targets: Option<Tensor>,
    /// The background whose difference to the frames a network that sees it is shown
    /// ([`crate::model::background_input`]),
    /// [B, 1, 3, H, W] in [-1, 1]: in pretraining the masked median of the scene's frames,
    /// as at inference, while the losses composite over the true `background`. None: the
    /// network is shown `background` (test-time training, where it is the estimate).
    pub shown_background: Option<Tensor>,
}

impl Batch {
    /// The same batch on `device`.
    pub fn to_device(&self, device: tch::Device) -> Batch {
        Batch {
            frames: self.frames.to_device(device),
            masks: self.masks.to_device(device),
            background: self.background.to_device(device),
            visible: self.visible.to_device(device),
            targets: self.targets.as_ref().map(|t| t.to_device(device)),
            shown_background: self.shown_background.as_ref().map(|t| t.to_device(device)),
        }
    }
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// 1e-3 for pretraining, 5e-4 for test-time training (supplementary Sec. 3).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay (optax's default, which the reference uses).
    pub weight_decay: f64,
    pub mask_schedule: MaskWeightSchedule,
    /// Weight of the supervised term on batches that carry true layers.
    pub supervision: SupervisionSchedule,
    /// How the supervised term weighs its pixels.
    pub supervision_weighting: SupervisionWeighting,
    /// Which frames the supervised term is paid on.
    pub supervised_frames: SupervisedFrames,
    /// Weight of the interior-opacity term ([`crate::interior_opacity`]); 0: off, the paper's
    /// objective.
    pub interior_opacity: f64,
    /// Steps over which the learning rate rises linearly to `learning_rate` (0: none).
    /// AdamW's first updates move every weight by about the learning rate whatever its
    /// gradient (its moment estimates are one gradient old); a warm-up keeps those steps
    /// small while the estimates form.
    pub warmup_steps: u64,
}

impl TrainConfig {
    pub fn pretraining() -> Self {
        Self {
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            mask_schedule: MaskWeightSchedule::pretraining(),
            supervision: SupervisionSchedule::off(),
            supervision_weighting: SupervisionWeighting::Uniform,
            supervised_frames: SupervisedFrames::All,
            interior_opacity: 0.0,
            warmup_steps: 0,
        }
    }

    /// Test-time training of `total_steps` steps at `learning_rate`, lambda_m starting at
    /// `mask_weight` (defaults: `defaults::TTT_LEARNING_RATE`, `defaults::TTT_MASK_WEIGHT`).
    pub fn test_time(total_steps: u64, learning_rate: f64, mask_weight: f64) -> Self {
        Self {
            learning_rate,
            weight_decay: 1e-4,
            mask_schedule: MaskWeightSchedule::test_time(total_steps, mask_weight),
            supervision: SupervisionSchedule::off(),
            supervision_weighting: SupervisionWeighting::Uniform,
            supervised_frames: SupervisedFrames::All,
            interior_opacity: 0.0,
            warmup_steps: 0,
        }
    }

    /// The learning rate of step `step` (from 0): `learning_rate * (step + 1) / warmup_steps`
    /// during the warm-up, `learning_rate` after it.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        if step >= self.warmup_steps {
            self.learning_rate
        } else {
            self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64
        }
    }
}

/// The losses of one optimisation step, as plain numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    pub step: u64,
    pub total: f64,
    pub reconstruction: f64,
    pub alpha_regularization: f64,
    pub mask: f64,
    pub lambda_m: f64,
    /// The supervised term (0 without true layers) and its weight.
    pub supervised: f64,
    pub lambda_s: f64,
    /// The learning rate this step updated with.
    pub learning_rate: f64,
}

/// Owns the optimiser state; the network's weights live in the caller's `VarStore`.
pub struct Trainer {
    optimizer: AdamW,
    config: TrainConfig,
    step: u64,
}

impl Trainer {
    pub fn new(vs: &nn::VarStore, config: TrainConfig) -> anyhow::Result<Self> {
        // A negative weight would reward transparency inside the masks.
        anyhow::ensure!(
            config.interior_opacity.is_finite() && config.interior_opacity >= 0.0,
            "the interior-opacity weight must be 0 or more, not {}",
            config.interior_opacity
        );
        let optimizer = AdamW::new(
            vs,
            AdamWConfig::new(config.learning_rate, config.weight_decay),
        );
        Ok(Self {
            optimizer,
            config,
            step: 0,
        })
    }

    /// Writes Adam's moment estimates, so that a resumed run continues exactly.
    pub fn save_optimizer(&self, path: &Path) -> anyhow::Result<()> {
        self.optimizer.save(path)
    }

    /// Multiplies parameter `name`'s learning rate elementwise by `scale`
    /// ([`AdamW::scale_learning_rate`]).
    pub fn scale_learning_rate(&mut self, name: &str, scale: &Tensor) -> anyhow::Result<()> {
        self.optimizer.scale_learning_rate(name, scale)
    }

    /// Restores what [`Trainer::save_optimizer`] wrote.
    pub fn load_optimizer(&mut self, path: &Path) -> anyhow::Result<()> {
        self.optimizer.load(path)
    }

    /// Steps taken so far (the schedule's clock). Set it when resuming from a checkpoint.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn set_step_count(&mut self, step: u64) {
        self.step = step;
    }

    /// One AdamW step on `batch`: forward with dropout, Eq. 5 (plus lambda_s E_sup where the
    /// batch has true layers), backward, update.
    pub fn step(&mut self, net: &OmnimatteNet, batch: &Batch) -> anyhow::Result<StepReport> {
        let lambda_m = self.config.mask_schedule.at(self.step);
        let shown = batch.shown_background.as_ref().unwrap_or(&batch.background);
        let input = net.image_input(&batch.frames, shown);
        let layers = net.forward(&input, &batch.masks, &batch.visible, true)?;
        let terms = total_loss(
            &layers,
            &batch.frames,
            &batch.background,
            &batch.masks,
            &batch.visible,
            lambda_m,
        );
        let lambda_s = self.config.supervision.at(self.step);
        let supervised = match &batch.targets {
            Some(targets) if lambda_s > 0.0 => Some(weighted_layer_loss(
                &layers,
                targets,
                &batch.masks,
                self.config.supervision_weighting,
                &self.config.supervised_frames.counted(&batch.visible),
            )),
            _ => None,
        };
        let mut objective = match &supervised {
            Some(s) => &terms.total + s * lambda_s,
            None => terms.total.shallow_clone(),
        };
        if self.config.interior_opacity > 0.0 {
            objective += interior_opacity_loss(&layers, &batch.masks, &batch.visible)
                * self.config.interior_opacity;
        }
        let total = objective.double_value(&[]);
        anyhow::ensure!(
            total.is_finite(),
            "training diverged at step {}: loss is {total}",
            self.step
        );
        let learning_rate = self.config.learning_rate_at(self.step);
        self.optimizer.set_learning_rate(learning_rate);
        self.optimizer.backward_step(&objective);
        let report = StepReport {
            step: self.step,
            total,
            reconstruction: terms.reconstruction.double_value(&[]),
            alpha_regularization: terms.alpha_regularization.double_value(&[]),
            mask: terms.mask.double_value(&[]),
            lambda_m,
            supervised: supervised.map_or(0.0, |s| s.double_value(&[])),
            lambda_s,
            learning_rate,
        };
        self.step += 1;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::TrainConfig;

    #[test]
    fn the_learning_rate_rises_linearly_over_the_warm_up_then_stays() {
        let config = TrainConfig {
            warmup_steps: 4,
            ..TrainConfig::test_time(100, 4e-4, 0.1)
        };
        let rates: Vec<f64> = (0..6).map(|s| config.learning_rate_at(s)).collect();
        let expected = [1e-4, 2e-4, 3e-4, 4e-4, 4e-4, 4e-4];
        for (got, want) in rates.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{rates:?}");
        }
        let constant = TrainConfig::test_time(100, 4e-4, 0.1);
        assert_eq!(constant.learning_rate_at(0), 4e-4, "no warm-up by default");
    }
}
