//! Test-time training that never delays the stream (the element's `background` mode).
//!
//! A worker thread owns its own copy of the network and keeps fine-tuning it on a bounded
//! buffer of the most recent frames, their background leaving out what a frozen copy of the
//! network as loaded finds in each ([`ZeroShotCovers`]). At each hand-over it leaves a
//! copy of its weights in a slot; inference takes the slot's content between two frames, when
//! it wants, without ever waiting for training (`try_lock`). Stopping waits for the step under
//! way at most.

use super::learner::{ContinuousLearner, LearnerStep};
use super::zero_shot_covers::ZeroShotCovers;
use super::{lock, Progress, TrainingFrames, WeightsSnapshot};
use crate::clip::{ClipSpec, OutputFrame};
use crate::model::ModelConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tch::Device;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContinuousConfig {
    /// Recent frames kept to train on.
    pub frames: usize,
    /// Steps before the first hand-over of the weights (its first steps move the network
    /// away from what it knew before they fit it to this video) ...
    pub first_swap: u64,
    /// ... and between two hand-overs after it.
    pub swap_every: u64,
    /// The mask-weight schedule's N (lambda_m decays at 0.1 N and 0.2 N, then stays).
    pub schedule_steps: u64,
    pub batch_size: usize,
    pub clip: ClipSpec,
    pub learning_rate: f64,
    /// lambda_m at the first step.
    pub mask_weight: f64,
    /// Weight of the interior-opacity term ([`crate::interior_opacity`]); 0: off.
    pub interior_opacity: f64,
    /// Share of the clips drawn among the newest frames, which inference decomposes next
    /// ([`crate::clip::recency_biased_start`]); 0: the whole window alike.
    pub recent_share: f64,
    /// Steps of the learning rate's linear warm-up
    /// ([`crate::train::TrainConfig::warmup_steps`]); 0: none.
    pub warmup_steps: u64,
    /// Which quantile of the frames' free values is their background (0.5: the median).
    pub background_quantile: f64,
    /// Whether each clip frame's background is brought to its exposure
    /// ([`TrainingFrames::matching_exposure`]), as the stream does with `exposure_match`.
    pub exposure_match: bool,
    /// Whether the network as loaded sees the frame it decomposes when it finds the effects
    /// the training background leaves out ([`ZeroShotCovers`]).
    pub zero_shot_output: OutputFrame,
    pub seed: u64,
}

impl ContinuousConfig {
    /// Refuses hand-overs at step 0 or every 0 steps, and a share of recent clips outside
    /// [0, 1].
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.swap_every >= 1, "swap every 0 steps");
        anyhow::ensure!(self.first_swap >= 1, "first swap after 0 steps");
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.recent_share),
            "the share of clips among the newest frames must lie in [0, 1], not {}",
            self.recent_share
        );
        Ok(())
    }

    /// Whether the weights after `steps` steps are handed over to inference.
    pub fn hands_over_at(&self, steps: u64) -> bool {
        steps >= self.first_swap && (steps - self.first_swap).is_multiple_of(self.swap_every)
    }
}

struct Shared {
    frames: Mutex<TrainingFrames>,
    weights: Mutex<Option<WeightsSnapshot>>,
    stop: AtomicBool,
}

pub struct ContinuousTraining {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<anyhow::Result<()>>>,
}

impl ContinuousTraining {
    /// Starts training a copy of `initial` (a network of configuration `model`). `on_step`
    /// runs on the training thread after each step.
    pub fn start(
        model: ModelConfig,
        initial: WeightsSnapshot,
        device: Device,
        config: ContinuousConfig,
        mut on_step: impl FnMut(&Progress) + Send + 'static,
    ) -> anyhow::Result<Self> {
        config.check()?;
        let shared = Arc::new(Shared {
            frames: Mutex::new(
                TrainingFrames::new(config.frames, config.background_quantile)
                    .median_of_covered_frames_only()
                    .matching_exposure(config.exposure_match),
            ),
            weights: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name("omnimatte-ttt".into())
            .spawn(move || -> anyhow::Result<()> {
                let shared = worker_shared;
                let mut covers = ZeroShotCovers::new(
                    model.clone(),
                    &initial,
                    device,
                    config.clip,
                    config.zero_shot_output,
                )?;
                let mut learner = ContinuousLearner::new(model, &initial, device, config)?;
                // Finding the effects of every frame costs the trainer about what inference
                // costs; when inference outpaces it, it spends on them at most the time of a
                // training step (half of its time), and the frames it cannot cover weigh in
                // no median.
                let mut last_step: Option<Duration> = None;
                while !shared.stop.load(Ordering::Acquire) {
                    covers.update(&shared.frames, last_step)?;
                    let batch = learner.batch(&mut lock(&shared.frames));
                    let Some(batch) = batch else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let stepping = Instant::now();
                    let LearnerStep { progress, weights } = learner.step(&batch)?;
                    last_step = Some(stepping.elapsed());
                    if let Some(weights) = weights {
                        *lock(&shared.weights) = Some(weights);
                    }
                    on_step(&progress);
                }
                Ok(())
            })?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// Adds a frame as the network saw it: image [1, 3, h, w] in [-1, 1], masks [L, 1, h, w].
    /// Waits at most for a batch being cut, never for a training step.
    pub fn add_frame(&self, image: &tch::Tensor, masks: &tch::Tensor) {
        lock(&self.shared.frames).push(image.shallow_clone(), masks.shallow_clone());
    }

    /// Trains against a clean plate [3, H, W] in [0, 1] instead of the frames' median.
    pub fn set_background_plate(&self, plate: &tch::Tensor, height: i64, width: i64) {
        lock(&self.shared.frames).set_background_plate(plate, height, width);
    }

    /// Forgets the frames (a seek: the video shown is no longer the one trained on).
    pub fn clear_frames(&self) {
        lock(&self.shared.frames).clear();
    }

    /// The newest weights not taken yet, if any and if the slot is free right now.
    pub fn take_weights(&self) -> Option<WeightsSnapshot> {
        self.shared.weights.try_lock().ok()?.take()
    }

    /// Stops the worker and waits for it (at most the step under way). Returns the error
    /// that ended training early, if one did.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => anyhow::bail!("the test-time training thread panicked"),
            None => Ok(()),
        }
    }

    /// Whether the worker has ended (only an error ends it before `stop`).
    pub fn has_ended(&self) -> bool {
        self.worker.as_ref().is_none_or(|w| w.is_finished())
    }
}

impl Drop for ContinuousTraining {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
