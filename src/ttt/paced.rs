//! The `background` mode at a fixed pace, on one thread: a number of training steps after
//! every frame inference takes, the weights handed over every `swap_every` steps. The element
//! trains as fast as its own thread runs, so what it outputs depends on the machine and its
//! load; this does the same work in an order the pace fixes, so that `eval` can score the
//! live mode (a machine whose trainer makes k steps while inference makes a frame).

use super::feed::feed_live_training;
use super::learner::ContinuousLearner;
use super::{ContinuousConfig, TrainingFrames, WeightsSnapshot};
use crate::clip::OutputFrame;
use crate::model::ModelConfig;
use crate::stream::{Decomposer, FrameLayers};
use tch::{nn, Device, Tensor};

pub struct PacedTraining {
    learner: ContinuousLearner,
    frames: TrainingFrames,
    steps_per_frame: u32,
    swaps: u64,
    /// Whether inference sees the frame it decomposes once tuned weights are in, if that
    /// differs from before.
    output_frame_once_tuned: Option<OutputFrame>,
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
            learner: ContinuousLearner::new(model, initial, device, config)?,
            frames: TrainingFrames::new(config.frames, config.background_quantile),
            steps_per_frame,
            swaps: 0,
            output_frame_once_tuned: None,
        })
    }

    /// Trains against a clean plate [3, H, W] in [0, 1] instead of the frames' median.
    pub fn set_background_plate(&mut self, plate: &Tensor, height: i64, width: i64) {
        self.frames.set_background_plate(plate, height, width);
    }

    /// From the first hand-over on, inference decomposes with `output_frame` (test-time
    /// training's losses train the layers of hidden frames only).
    pub fn set_output_frame_once_tuned(&mut self, output_frame: OutputFrame) {
        self.output_frame_once_tuned = Some(output_frame);
    }

    /// After `decomposer` took a frame and finished `finished`: feeds the trainer as the
    /// element's worker does, takes this frame's steps, and loads the weights handed over into
    /// `inference` (the network the decomposer runs), so that the next frame uses them.
    pub fn after_frame(
        &mut self,
        decomposer: &mut Decomposer,
        finished: &[FrameLayers],
        inference: &nn::VarStore,
    ) -> anyhow::Result<()> {
        feed_live_training(decomposer, finished, &mut self.frames);
        for _ in 0..self.steps_per_frame {
            let Some(batch) = self.learner.batch(&mut self.frames) else {
                break;
            };
            if let Some(weights) = self.learner.step(&batch)?.weights {
                weights.load_into(inference)?;
                decomposer.weights_changed();
                if let Some(output_frame) = self.output_frame_once_tuned {
                    decomposer.set_output_frame(output_frame);
                }
                self.swaps += 1;
            }
        }
        Ok(())
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
