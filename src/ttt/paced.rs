//! The `background` mode at a fixed pace, on one thread: a number of training steps after
//! every frame inference takes, the weights handed over when the element hands them over.
//! The element trains as fast as its own thread runs, so what it outputs depends on the
//! machine and its load; this does the same work in an order the pace fixes, so that `eval`
//! can score the live mode (a machine whose trainer makes k steps while inference makes a
//! frame).

use super::learner::ContinuousLearner;
use super::zero_shot_covers::ZeroShotCovers;
use super::{ContinuousConfig, TrainingFrames, WeightsSnapshot};
use crate::model::ModelConfig;
use crate::stream::{Decomposer, Inference};
use std::sync::Mutex;
use tch::{nn, Device, Tensor};

pub struct PacedTraining {
    learner: ContinuousLearner,
    covers: ZeroShotCovers,
    /// In a mutex only because [`ZeroShotCovers`] takes them so (the training thread's are
    /// shared); nothing else holds it here.
    frames: Mutex<TrainingFrames>,
    steps_per_frame: u32,
    swaps: u64,
    /// How inference runs once tuned weights are in, if not as before.
    inference_once_tuned: Option<Inference>,
}

impl PacedTraining {
    /// Trains a copy of `initial` (a network of configuration `model`) on `device`.
    pub fn new(
        model: ModelConfig,
        initial: &WeightsSnapshot,
        device: Device,
        config: ContinuousConfig,
        steps_per_frame: u32,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            covers: ZeroShotCovers::new(
                model.clone(),
                initial,
                device,
                config.clip,
                config.zero_shot_output,
            )?,
            learner: ContinuousLearner::new(model, initial, device, config)?,
            frames: Mutex::new(
                TrainingFrames::new(config.frames, config.background_quantile)
                    .median_of_covered_frames_only()
                    .matching_exposure(config.exposure_match),
            ),
            steps_per_frame,
            swaps: 0,
            inference_once_tuned: None,
        })
    }

    /// Trains against a clean plate [3, H, W] in [0, 1] instead of the frames' median.
    pub fn set_background_plate(&mut self, plate: &Tensor, height: i64, width: i64) {
        self.frames_mut().set_background_plate(plate, height, width);
    }

    /// From the first hand-over on, inference runs as `inference` (as the element's worker
    /// does once it swaps tuned weights in).
    pub fn set_inference_once_tuned(&mut self, inference: Inference) {
        self.inference_once_tuned = Some(inference);
    }

    /// After `decomposer` took a frame: gives the trainer that frame as the network saw it,
    /// takes this frame's steps, and loads the weights handed over into `inference` (the
    /// network the decomposer runs), so that the next frame uses them.
    pub fn after_frame(
        &mut self,
        decomposer: &mut Decomposer,
        inference: &nn::VarStore,
    ) -> anyhow::Result<()> {
        if let Some((image, masks)) = decomposer.latest_inputs() {
            self.frames_mut().push(image, masks);
        }
        // Every frame: the pace, not the clock, bounds the work here.
        self.covers.update(&self.frames, None)?;
        for _ in 0..self.steps_per_frame {
            let frames = self.frames.get_mut().unwrap_or_else(|e| e.into_inner());
            let Some(batch) = self.learner.batch(frames) else {
                break;
            };
            if let Some(weights) = self.learner.step(&batch)?.weights {
                weights.load_into(inference)?;
                decomposer.weights_changed();
                if let Some(inference) = self.inference_once_tuned {
                    decomposer.set_inference(inference);
                }
                self.swaps += 1;
            }
        }
        Ok(())
    }

    fn frames_mut(&mut self) -> &mut TrainingFrames {
        self.frames.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Training steps taken so far.
    pub fn steps(&self) -> u64 {
        self.learner.steps()
    }

    /// Weights handed over so far.
    pub fn swaps(&self) -> u64 {
        self.swaps
    }
}
