//! The `background` mode's training, one step at a time, on frames held elsewhere: the
//! training thread of [`super::ContinuousTraining`] steps it as fast as it can, and
//! [`super::PacedTraining`] a fixed number of times per frame, so that the live mode can be
//! scored the same way on every machine.

use super::{ContinuousConfig, Progress, TrainingFrames, WeightsSnapshot};
use crate::model::{ModelConfig, OmnimatteNet};
use crate::train::{Batch, TrainConfig, Trainer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;
use tch::{nn, Device};

/// A copy of the network, its optimiser and the clips' random source.
pub struct ContinuousLearner {
    vs: nn::VarStore,
    net: OmnimatteNet,
    trainer: Trainer,
    rng: StdRng,
    config: ContinuousConfig,
    started: Option<Instant>,
}

/// What a step left: its progress, and the weights to hand over when a swap is due.
pub struct LearnerStep {
    pub progress: Progress,
    pub weights: Option<WeightsSnapshot>,
}

impl ContinuousLearner {
    /// A copy of `initial` (a network of configuration `model`) in fp32 on `device`.
    pub fn new(
        model: ModelConfig,
        initial: &WeightsSnapshot,
        device: Device,
        config: ContinuousConfig,
    ) -> anyhow::Result<Self> {
        config.check()?;
        let vs = nn::VarStore::new(device);
        let net = OmnimatteNet::new(&vs.root(), model)?;
        initial.load_into(&vs)?;
        let trainer = Trainer::new(
            &vs,
            TrainConfig {
                interior_opacity: config.interior_opacity,
                warmup_steps: config.warmup_steps,
                ..TrainConfig::test_time(
                    config.schedule_steps,
                    config.learning_rate,
                    config.mask_weight,
                )
            },
        )?;
        Ok(Self {
            vs,
            net,
            trainer,
            rng: StdRng::seed_from_u64(config.seed),
            config,
            started: None,
        })
    }

    /// Clips cut from `frames`, or None while they hold too few frames for training to mean
    /// anything (a clip's span, or all the room there is).
    pub fn batch(&mut self, frames: &mut TrainingFrames) -> Option<Batch> {
        let enough = self.config.clip.span().min(self.config.frames);
        (frames.len() >= enough).then(|| {
            frames.batch(
                self.config.clip,
                self.config.batch_size,
                self.config.recent_share,
                &mut self.rng,
            )
        })
    }

    /// One step of the game on `batch`; when a hand-over is due, a copy of the weights.
    pub fn step(&mut self, batch: &Batch) -> anyhow::Result<LearnerStep> {
        let began = *self.started.get_or_insert_with(Instant::now);
        let report = self
            .trainer
            .step(&self.net, &batch.to_device(self.vs.device()))?;
        let steps = self.steps();
        let weights = self
            .config
            .hands_over_at(steps)
            .then(|| WeightsSnapshot::take(&self.vs, steps));
        Ok(LearnerStep {
            progress: Progress {
                step: steps,
                steps: None,
                loss: report.total,
                reconstruction: report.reconstruction,
                mask_weight: report.lambda_m,
                steps_per_second: steps as f64 / began.elapsed().as_secs_f64(),
            },
            weights,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.trainer.step_count()
    }
}
