//! Ctrl-C and SIGTERM. The first asks the run to stop after the current step, which saves a
//! checkpoint and says how to resume; a second one ends the process at once.

use signal_hook::consts::{SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once per process) and returns the flag they raise.
pub fn install() -> anyhow::Result<Arc<AtomicBool>> {
    if let Some(flag) = REQUESTED.get() {
        return Ok(Arc::clone(flag));
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Order matters: the shutdown is armed only once the flag is already set.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(Arc::clone(REQUESTED.get_or_init(|| flag)))
}

pub fn requested(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
