//! What the `background` mode's training takes from inference after each frame: the frame as
//! the network saw it, and where the layers finished since then lie, which the training
//! background leaves out (the live counterpart of [`super::leave_out_layers`]).

use super::{ContinuousTraining, TrainingFrames};
use crate::background::layers_cover;
use crate::stream::{Decomposer, FrameLayers};
use tch::Tensor;

/// Where live training keeps its frames: the training thread's, or frames trained on in step
/// with inference ([`super::PacedTraining`]).
pub trait LiveFeed {
    /// A frame as the network saw it: image [1, 3, h, w] in [-1, 1], masks [L, 1, h, w].
    fn frame_seen(&mut self, image: &Tensor, masks: &Tensor);
    /// Where the layers of the frame added `age` frames ago (0: the latest) lie: [1, h, w].
    fn effects_found(&mut self, age: usize, covered: &Tensor);
}

/// Feeds `feed` after `decomposer` took a frame and finished the frames `finished`.
pub fn feed_live_training(
    decomposer: &Decomposer,
    finished: &[FrameLayers],
    feed: &mut impl LiveFeed,
) {
    if let Some((image, masks)) = decomposer.latest_inputs() {
        feed.frame_seen(&image, &masks);
    }
    let received = decomposer.received();
    for out in finished {
        let age = (received - 1 - out.index) as usize;
        feed.effects_found(age, &layers_cover(&out.network_working));
    }
}

impl LiveFeed for ContinuousTraining {
    fn frame_seen(&mut self, image: &Tensor, masks: &Tensor) {
        self.add_frame(image, masks);
    }

    fn effects_found(&mut self, age: usize, covered: &Tensor) {
        self.cover_frame(age, covered);
    }
}

impl LiveFeed for TrainingFrames {
    fn frame_seen(&mut self, image: &Tensor, masks: &Tensor) {
        self.push(image.shallow_clone(), masks.shallow_clone());
    }

    fn effects_found(&mut self, age: usize, covered: &Tensor) {
        self.cover_background(age, covered);
    }
}
