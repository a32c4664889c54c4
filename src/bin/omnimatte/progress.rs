//! Progress bars for the commands' long work (test-time training, frames written).

use gstomnimatte::ttt::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` units named `what`, with a message slot and the time left. indicatif draws
/// it on standard error, and only when that is a terminal, so logs and pipes stay clean.
pub fn bar(len: u64, what: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} {{msg}} [{{elapsed_precise}} < {{eta_precise}}]"
    ))?);
    Ok(bar)
}

/// One test-time training step on `bar`: the losses and the rate, as they come.
pub fn training_step(bar: &ProgressBar, progress: &Progress) {
    bar.set_message(format!(
        "loss {:.5} (recon {:.5}) {:.2} steps/s",
        progress.loss, progress.reconstruction, progress.steps_per_second
    ));
    bar.inc(1);
}
