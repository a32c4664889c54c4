//! Test-time training progress as bus messages: an element message `omnimatte-training` for
//! applications (step, loss, steps per second) and GStreamer progress messages, which
//! `gst-launch-1.0 -m` prints.

use crate::ttt::Progress;
use gst::prelude::*;

/// Code of the progress messages.
pub const PROGRESS_CODE: &str = "omnimatte-test-time-training";

/// How a training run stands when the message is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Started,
    Running,
    Finished,
    /// Stopped before its planned steps (flush, seek or shutdown).
    Cancelled,
}

/// Posts the training progress: `mode` is the `ttt` property's nick.
pub fn post_training(element: &gst::Element, mode: &str, phase: Phase, progress: &Progress) {
    let steps = progress.steps.unwrap_or(0);
    let structure = gst::Structure::builder("omnimatte-training")
        .field("mode", mode)
        .field("step", progress.step)
        .field("steps", steps)
        .field("loss", progress.loss)
        .field("reconstruction", progress.reconstruction)
        .field("mask-weight", progress.mask_weight)
        .field("steps-per-second", progress.steps_per_second)
        .field("done", matches!(phase, Phase::Finished | Phase::Cancelled))
        .build();
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );

    let of = progress.steps.map_or_else(String::new, |n| format!("/{n}"));
    let text = match phase {
        Phase::Started => format!("test-time training ({mode}) started"),
        Phase::Running => format!(
            "test-time training step {}{of}: loss {:.5}, {:.2} steps/s",
            progress.step, progress.loss, progress.steps_per_second
        ),
        Phase::Finished => format!(
            "test-time training done after {} steps: loss {:.5}",
            progress.step, progress.loss
        ),
        Phase::Cancelled => format!("test-time training stopped at step {}", progress.step),
    };
    let kind = match phase {
        Phase::Started => gst::ProgressType::Start,
        Phase::Running => gst::ProgressType::Continue,
        Phase::Finished => gst::ProgressType::Complete,
        Phase::Cancelled => gst::ProgressType::Canceled,
    };
    let _ = element.post_message(
        gst::message::Progress::builder(kind, PROGRESS_CODE, &text)
            .src(element)
            .build(),
    );
}

/// Posts `omnimatte-weights-swapped`: inference now runs on the weights of training step
/// `step`; `swaps` counts the swaps since the element started.
pub fn post_swap(element: &gst::Element, step: u64, swaps: u64) {
    let structure = gst::Structure::builder("omnimatte-weights-swapped")
        .field("step", step)
        .field("swaps", swaps)
        .build();
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );
}
