//! Progress of a run. On a terminal: one bar redrawn in place (steps, ETA, epoch, loss, lr,
//! samples/s, batch × accumulation), with log lines printed above it. Elsewhere (a pipe, a file,
//! CI): no bar, and the trainer prints its periodic log lines instead.

use super::state::TrainerState;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// The bar being drawn, if any; the log writer prints above it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when standard error is a terminal, `CI` is unset and info messages are shown.
    pub fn start(step: u64, max_steps: u64) -> Progress {
        let wanted = std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && tracing::enabled!(tracing::Level::INFO);
        if !wanted {
            return Progress::disabled();
        }
        let style =
            ProgressStyle::with_template("step {pos}/{len} [{bar:28.cyan/blue}] {percent:>3}% | ETA {eta} | {msg}")
                .expect("a valid progress template")
                .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(max_steps), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_position(step);
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Progress { bar: Some(bar) }
    }

    /// No bar (until [`Progress::start`]).
    pub fn disabled() -> Progress {
        Progress { bar: None }
    }

    /// Whether a bar shows the run; without one the trainer logs a line every `log_every` steps.
    pub fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    pub fn update(&self, state: &TrainerState) {
        let Some(bar) = &self.bar else { return };
        bar.set_length(state.max_steps);
        bar.set_position(state.global_step);
        let samples_per_second = state.samples_seen as f64 / state.step_seconds.max(1e-9);
        let loss = state.loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into());
        bar.set_message(format!(
            "epoch {:.2} | loss {loss} | lr {:.2e} | {samples_per_second:.1} samples/s | batch {}×{}",
            state.epoch, state.lr, state.batch_size, state.grad_accum
        ));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
            bar.abandon();
            eprintln!(); // the bar's line stays; what follows starts below it
        }
    }
}

/// A standard-error writer for log events that keeps a drawn bar intact: each event (one
/// `Vec` of bytes) is printed with the bar lifted. Use as `fmt().with_writer(LogWriter::new)`.
#[derive(Default)]
pub struct LogWriter(Vec<u8>);

impl LogWriter {
    pub fn new() -> LogWriter {
        LogWriter(Vec::new())
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let print = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}
