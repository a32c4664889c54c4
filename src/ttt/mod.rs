//! Test-time training (paper Sec. 3.3, supplementary Sec. 3): the pretrained network plays the
//! coordination game once more, on clips of the very video it is about to decompose, with the
//! predict pattern of inference (two frames seen, the rest hidden). Pretraining and test-time
//! training share one trainer ([`crate::train::Trainer`]); this module supplies the video.
//!
//! - [`TrainingFrames`]: the video at the working size, with its masked-median background.
//! - [`leave_out_layers`]: that median made again without what a zero-shot pass's layers
//!   hold, so that the game is not played over a background that keeps the effects.
//! - [`fine_tune`]: a fixed number of steps, for files (before any output).
//! - [`ContinuousTraining`]: a worker that keeps fine-tuning on recent frames while
//!   inference streams, handing over new weights every few steps, its background leaving out
//!   what a frozen copy of the network as loaded finds in each frame; [`PacedTraining`]
//!   does its work at a fixed pace of steps per frame, to score it.

mod continuous;
mod fine_tune;
mod frames;
mod learner;
mod leave_out;
mod paced;
mod snapshot;
mod zero_shot_covers;

pub use continuous::{ContinuousConfig, ContinuousTraining};
pub use fine_tune::{fine_tune, FineTuneConfig, Progress};
pub use frames::TrainingFrames;
pub use leave_out::leave_out_layers;
pub use paced::PacedTraining;
pub use snapshot::WeightsSnapshot;
pub use zero_shot_covers::ZeroShotCovers;

/// Locks a mutex shared with the training thread; a panic there must not stop inference.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
