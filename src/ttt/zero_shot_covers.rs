//! The live mode's counterpart of [`super::leave_out_layers`]: the network as loaded, frozen,
//! decomposes every frame the live training keeps, once, as it arrives, and what its layers
//! cover is left out of the training background. Covers from the network being tuned would
//! feed back: once it learns to drop a shadow, the shadow stays in the background, and the
//! game over that background teaches it to drop more (docs/measurements.md, session 31).

use super::leave_out::{push_training_frame, working_decomposer};
use super::{lock, TrainingFrames, WeightsSnapshot};
use crate::background::layers_cover;
use crate::clip::{ClipSpec, OutputFrame};
use crate::model::precision::hold_for_inference;
use crate::model::{ModelConfig, OmnimatteNet};
use crate::stream::Decomposer;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tch::{nn, Device, Tensor};

pub struct ZeroShotCovers {
    /// Holds the frozen copy's variables.
    _vs: nn::VarStore,
    net: OmnimatteNet,
    clip: ClipSpec,
    output_frame: OutputFrame,
    /// Streams the frames at their working size over its own masked median, as inference
    /// streams them (over the training frames' median as a plate instead, as
    /// `leave_out_layers` runs, one validation video scored 0.80 against 0.85; session 31);
    /// made at the first frame (its size and objects are the frames').
    decomposer: Option<Decomposer>,
    /// The frame number (in [`TrainingFrames::added`]'s count) of the decomposer's frame 0.
    first: u64,
    /// The next frame number to decompose, and the clear of the frames it counts in.
    next: u64,
    clears: u64,
}

impl ZeroShotCovers {
    /// A frozen copy of `initial` (a network of configuration `model`) on `device`, run on
    /// clips `clip`, seeing the frame it decomposes or not (`output_frame`).
    pub fn new(
        model: ModelConfig,
        initial: &WeightsSnapshot,
        device: Device,
        clip: ClipSpec,
        output_frame: OutputFrame,
    ) -> anyhow::Result<Self> {
        let vs = nn::VarStore::new(device);
        let precision = model.precision;
        let net = OmnimatteNet::new(&vs.root(), model)?;
        initial.load_into(&vs)?;
        // Never trained: held as inference holds its weights (bf16 where it computes in it).
        hold_for_inference(&vs, precision);
        Ok(Self {
            _vs: vs,
            net,
            clip,
            output_frame,
            decomposer: None,
            first: 0,
            next: 0,
            clears: 0,
        })
    }

    /// Decomposes the frames added to `frames` since the last call and covers, in their
    /// background, what the layers finished hold (nothing over a clean plate), for at most
    /// `budget` (at least one frame; None: every frame). The lock is held only to read the
    /// new frames and to cover, never while the network runs. When the frames waiting are
    /// more than half of those kept (inference outpaces this), the older ones are skipped: the
    /// newer stay longer to be trained on. After a clear (a seek) a new stream starts.
    pub fn update(
        &mut self,
        frames: &Mutex<TrainingFrames>,
        budget: Option<Duration>,
    ) -> anyhow::Result<()> {
        let (new, clears, exposure_match) = {
            let frames = lock(frames);
            if frames.has_plate() {
                // A clean plate shows no effect to leave out.
                self.next = frames.added();
                return Ok(());
            }
            if frames.clears() != self.clears {
                // The frames may come at another size, or with other objects.
                self.decomposer = None;
                self.restart(0, frames.clears());
            }
            // Frames waiting beyond half of those kept are skipped (they weigh in no median).
            let worth = frames
                .added()
                .saturating_sub((frames.capacity() as u64 / 2).max(1))
                .max(frames.oldest_number());
            if self.next < worth {
                self.restart(worth, self.clears);
            }
            let new: Vec<(Tensor, Tensor)> = (self.next..frames.added())
                .filter_map(|n| frames.numbered(n))
                .map(|(image, masks)| (image.shallow_clone(), masks.shallow_clone()))
                .collect();
            if new.is_empty() {
                return Ok(());
            }
            (new, frames.clears(), frames.matches_exposure())
        };
        let started = Instant::now();
        let covers = tch::no_grad(|| -> anyhow::Result<Vec<(u64, Tensor)>> {
            let mut covers = Vec::new();
            for (image, masks) in &new {
                if budget.is_some_and(|b| started.elapsed() >= b) {
                    break;
                }
                self.next += 1;
                if self.decomposer.is_none() {
                    self.decomposer = Some(working_decomposer(
                        image,
                        masks,
                        self.clip,
                        self.output_frame,
                        exposure_match,
                    )?);
                }
                let decomposer = self.decomposer.as_mut().expect("made above");
                for out in push_training_frame(decomposer, &self.net, image, masks)? {
                    covers.push((self.first + out.index, layers_cover(&out.network_working)));
                }
            }
            Ok(covers)
        })?;
        let mut frames = lock(frames);
        if frames.clears() != clears {
            return Ok(()); // a seek while the network ran: these frames are gone
        }
        for (number, covered) in covers {
            if number >= frames.oldest_number() {
                let age = frames.added() - 1 - number;
                frames.cover_background(age as usize, &covered);
            }
        }
        Ok(())
    }

    /// Starts a new stream at frame number `first` of clear `clears`.
    fn restart(&mut self, first: u64, clears: u64) {
        if let Some(decomposer) = &mut self.decomposer {
            decomposer.reset();
        }
        (self.first, self.next, self.clears) = (first, first, clears);
    }
}
