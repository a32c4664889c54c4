//! A fixed number of test-time training steps on a video (the `before-output` mode and the
//! CLI): lr 5e-4, lambda_m decayed tenfold at 0.1 N and 0.2 N (docs/method.md).

use super::TrainingFrames;
use crate::clip::ClipSpec;
use crate::model::OmnimatteNet;
use crate::train::{StepReport, TrainConfig, Trainer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::ops::ControlFlow;
use std::time::Instant;
use tch::nn;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FineTuneConfig {
    /// N, the number of steps (also the clock of the mask-weight schedule).
    pub steps: u64,
    /// Clips per step. The reference uses 8 (32 in the paper) on a GPU; on 2 CPU cores one
    /// clip per step keeps a step near one second at 128x224.
    pub batch_size: usize,
    pub clip: ClipSpec,
    pub learning_rate: f64,
    /// lambda_m at the first step (`defaults::TTT_MASK_WEIGHT`).
    pub mask_weight: f64,
    /// Seeds the choice of clips and of flipped patterns.
    pub seed: u64,
    /// Weight of the interior-opacity term ([`crate::interior_opacity`]); 0: off.
    pub interior_opacity: f64,
    /// Steps of the learning rate's linear warm-up ([`TrainConfig::warmup_steps`]); 0: none.
    pub warmup_steps: u64,
}

impl FineTuneConfig {
    pub fn new(steps: u64) -> Self {
        Self {
            steps,
            batch_size: 1,
            clip: ClipSpec::default(),
            learning_rate: crate::defaults::TTT_LEARNING_RATE,
            mask_weight: crate::defaults::TTT_MASK_WEIGHT,
            seed: 0,
            interior_opacity: crate::defaults::TTT_INTERIOR_OPACITY,
            warmup_steps: crate::defaults::TTT_WARMUP_STEPS,
        }
    }
}

/// Where a test-time training stands, after each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Steps done so far.
    pub step: u64,
    /// Steps planned; None when training runs until stopped.
    pub steps: Option<u64>,
    /// Eq. 5 total and its reconstruction term, on this step's batch.
    pub loss: f64,
    pub reconstruction: f64,
    /// lambda_m of this step (the mask term's weight in Eq. 5).
    pub mask_weight: f64,
    pub steps_per_second: f64,
}

/// Fine-tunes `net` (whose weights live in `vs`) on `frames` for `config.steps` steps.
/// `on_step` sees the progress after every step and may stop the training early
/// (`ControlFlow::Break`); the steps taken are returned either way.
pub fn fine_tune(
    vs: &nn::VarStore,
    net: &OmnimatteNet,
    frames: &mut TrainingFrames,
    config: &FineTuneConfig,
    mut on_step: impl FnMut(&Progress) -> ControlFlow<()>,
) -> anyhow::Result<Vec<StepReport>> {
    anyhow::ensure!(!frames.is_empty(), "test-time training needs frames");
    let mut trainer = Trainer::new(
        vs,
        TrainConfig {
            interior_opacity: config.interior_opacity,
            warmup_steps: config.warmup_steps,
            ..TrainConfig::test_time(config.steps, config.learning_rate, config.mask_weight)
        },
    )?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let started = Instant::now();
    let mut reports = Vec::new();
    for step in 0..config.steps {
        let batch = frames
            .batch(config.clip, config.batch_size, 0.0, &mut rng)
            .to_device(vs.device());
        let report = trainer.step(net, &batch)?;
        reports.push(report);
        let progress = Progress {
            step: step + 1,
            steps: Some(config.steps),
            loss: report.total,
            reconstruction: report.reconstruction,
            mask_weight: report.lambda_m,
            steps_per_second: (step + 1) as f64 / started.elapsed().as_secs_f64(),
        };
        if on_step(&progress).is_break() {
            break;
        }
    }
    Ok(reports)
}
