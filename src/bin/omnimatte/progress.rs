//! Progress bars for the commands' long work (test-time training, frames written).

use gstomnimatte::ttt::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a bar is written as a line of text where standard error is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(20);

/// A bar of `len` units named `what`, with a message slot and the time left, on standard
/// error: drawn in place on a terminal; elsewhere (a log file, a pipe) written as a plain line
/// when it first moves and then every [`LOG_EVERY`], so that a long run in a script says how
/// far it is without filling the log.
pub fn bar(len: u64, what: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(len);
    let counts = format!("{{pos}}/{{len}} {what} {{msg}} [{{elapsed_precise}} < {{eta_precise}}]");
    if std::io::stderr().is_terminal() {
        bar.set_style(ProgressStyle::with_template(&format!(
            "{{bar:40}} {counts}"
        ))?);
    } else {
        bar.set_draw_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(LogLines::default()),
            1,
        ));
        bar.set_style(ProgressStyle::with_template(&counts)?);
    }
    Ok(bar)
}

/// A "terminal" that writes what the bar draws as one line on standard error, at most every
/// [`LOG_EVERY`], and ignores the cursor moves that redraw it in place.
#[derive(Debug, Default)]
struct LogLines {
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    drawn: String,
    last_written: Option<Instant>,
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.drawn.push_str(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let line = std::mem::take(&mut state.drawn);
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\r');
        let due = state.last_written.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due && !line.is_empty() {
            state.last_written = Some(Instant::now());
            writeln!(std::io::stderr(), "{line}")?;
        }
        Ok(())
    }
}

/// One test-time training step on `bar`: the losses and the rate, as they come.
pub fn training_step(bar: &ProgressBar, progress: &Progress) {
    bar.set_message(format!(
        "loss {:.5} (recon {:.5}) {:.2} steps/s",
        progress.loss, progress.reconstruction, progress.steps_per_second
    ));
    bar.inc(1);
}
