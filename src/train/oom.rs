//! Out of memory: the one place libtorch's errors are classified, the memory figures reported
//! with an `oom` event, and the deterministic fault injector that drives the same recovery path
//! in tests (`FTLUA_INJECT_OOM`).

use std::cell::Cell;
use tch::TchError;
use thiserror::Error;

/// Why a step (or an evaluation) did not complete.
#[derive(Debug, Error)]
pub enum StepError {
    /// An allocation failed; everything the attempt held has been dropped and it can be retried.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<TchError> for StepError {
    fn from(error: TchError) -> Self {
        let message = error.to_string();
        if is_out_of_memory(&message) {
            StepError::OutOfMemory(first_line(&message))
        } else {
            StepError::Other(error.into())
        }
    }
}

/// CUDA's allocator says "CUDA out of memory"; the CPU allocator "can't allocate memory" (or
/// "not enough memory"). accelerate matches the same strings.
pub fn is_out_of_memory(message: &str) -> bool {
    ["out of memory", "can't allocate memory", "not enough memory"].iter().any(|m| message.contains(m))
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

/// Resident memory of this process in bytes (Linux), reported with `oom` events.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Parses a memory size: "1.5GiB", "800MB", "2G", "1048576" (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    (number >= 0.0).then(|| (number * scale) as u64)
}

/// Caps the memory libtorch can allocate on the CPU at `budget` bytes beyond what the process
/// has mapped now (libraries included), with `RLIMIT_AS`: allocations past it fail for real inside
/// libtorch's allocator and are recovered like a CUDA OOM. The previous limit comes back when the
/// guard is dropped.
pub struct MemoryCap {
    previous: libc::rlimit,
}

impl MemoryCap {
    pub fn new(budget: u64) -> anyhow::Result<MemoryCap> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let mapped_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("max_memory: cannot read VmSize from /proc/self/status"))?;
        let mut previous = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_AS, &mut previous) != 0 {
                anyhow::bail!("max_memory: getrlimit failed: {}", std::io::Error::last_os_error());
            }
            let cap = libc::rlimit {
                rlim_cur: (mapped_kib * 1024 + budget).min(previous.rlim_max),
                rlim_max: previous.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                anyhow::bail!("max_memory: setrlimit failed: {}", std::io::Error::last_os_error());
            }
        }
        Ok(MemoryCap { previous })
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        // SAFETY: restores the limit read in `new`.
        unsafe {
            libc::setrlimit(libc::RLIMIT_AS, &self.previous);
        }
    }
}

/// Fails chosen micro-batches as if memory ran out, after their forward pass (so the attempt
/// really holds activations that recovery must free). Set by `FTLUA_INJECT_OOM`:
/// `batch>N` fails every training micro-batch of more than N samples, `eval>N` every eval batch of
/// more than N, `source>N` every training micro-batch whose longest prompt exceeds N tokens,
/// `count:N` the next N training micro-batches whatever their size, `optimizer:N`
/// the update of optimizer step N once, part-way through its parameters; with `rank:N` the faults
/// strike only the process of that rank (data-parallel runs).
#[derive(Debug, Default)]
pub struct FaultInjector {
    train_above: Option<usize>,
    source_above: Option<usize>,
    eval_above: Option<usize>,
    remaining: Cell<u64>,
    /// Optimizer step (1-based) whose update fails once, at its third parameter.
    optimizer_step: Cell<Option<u64>>,
}

impl FaultInjector {
    /// The faults `FTLUA_INJECT_OOM` asks for on the process of rank `rank`.
    pub fn from_env(rank: usize) -> anyhow::Result<FaultInjector> {
        match std::env::var("FTLUA_INJECT_OOM") {
            Ok(spec) => FaultInjector::parse(&spec, rank),
            Err(_) => Ok(FaultInjector::default()),
        }
    }

    pub fn parse(spec: &str, rank: usize) -> anyhow::Result<FaultInjector> {
        let mut injector = FaultInjector::default();
        let mut only_rank = None;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let number = |text: &str| -> anyhow::Result<u64> {
                text.parse().map_err(|_| anyhow::anyhow!("FTLUA_INJECT_OOM: {part:?}: expected a whole number"))
            };
            if let Some(n) = part.strip_prefix("batch>") {
                injector.train_above = Some(number(n)? as usize);
            } else if let Some(n) = part.strip_prefix("source>") {
                injector.source_above = Some(number(n)? as usize);
            } else if let Some(n) = part.strip_prefix("eval>") {
                injector.eval_above = Some(number(n)? as usize);
            } else if let Some(n) = part.strip_prefix("count:") {
                injector.remaining.set(number(n)?);
            } else if let Some(n) = part.strip_prefix("optimizer:") {
                injector.optimizer_step.set(Some(number(n)?));
            } else if let Some(n) = part.strip_prefix("rank:") {
                only_rank = Some(number(n)? as usize);
            } else {
                anyhow::bail!("FTLUA_INJECT_OOM: unknown fault {part:?} (expected batch>N, source>N, eval>N, count:N, optimizer:N or rank:N)");
            }
        }
        match only_rank {
            Some(only) if only != rank => Ok(FaultInjector::default()),
            _ => Ok(injector),
        }
    }

    pub fn train(&self, batch: usize, longest_source: usize) -> Result<(), StepError> {
        if self.remaining.get() > 0 {
            self.remaining.set(self.remaining.get() - 1);
            return Err(injected(batch));
        }
        match (self.train_above, self.source_above) {
            (Some(limit), _) if batch > limit => Err(injected(batch)),
            (_, Some(limit)) if longest_source > limit => Err(injected(batch)),
            _ => Ok(()),
        }
    }

    /// The parameter index at which the update of optimizer step `step` (1-based) should fail,
    /// once.
    pub fn optimizer(&self, step: u64) -> Option<usize> {
        if self.optimizer_step.get() == Some(step) {
            self.optimizer_step.set(None);
            return Some(2);
        }
        None
    }

    /// Batch-size search probes fail like training micro-batches of the same size (but do not
    /// use up `count:N`).
    pub fn probe(&self, batch: usize) -> Result<(), StepError> {
        match self.train_above {
            Some(limit) if batch > limit => Err(injected(batch)),
            _ => Ok(()),
        }
    }

    pub fn eval(&self, batch: usize) -> Result<(), StepError> {
        match self.eval_above {
            Some(limit) if batch > limit => Err(injected(batch)),
            _ => Ok(()),
        }
    }
}

fn injected(batch: usize) -> StepError {
    StepError::OutOfMemory(format!(
        "injected by FTLUA_INJECT_OOM for a batch of {batch}: CUDA out of memory (simulated)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_allocator_messages() {
        for message in [
            "CUDA out of memory. Tried to allocate 2.00 GiB",
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes",
            "DefaultCPUAllocator: not enough memory: you tried to allocate 1 bytes",
        ] {
            assert!(is_out_of_memory(message), "{message}");
        }
        assert!(!is_out_of_memory("shape mismatch"));
    }

    #[test]
    fn parses_memory_sizes() {
        assert_eq!(parse_size("1.5GiB"), Some(1610612736));
        assert_eq!(parse_size("800MB"), Some(800_000_000));
        assert_eq!(parse_size("1048576"), Some(1048576));
        assert_eq!(parse_size("12 parsecs"), None);
    }

    #[test]
    fn injector_fails_what_it_is_told() {
        let injector = FaultInjector::parse("batch>8, source>100, eval>4, count:2", 0).unwrap();
        assert!(injector.train(1, 10).is_err() && injector.train(1, 10).is_err(), "count:2 fails the next two");
        assert!(injector.train(8, 100).is_ok());
        assert!(injector.train(9, 10).is_err());
        assert!(injector.train(1, 101).is_err());
        assert!(injector.eval(4).is_ok() && injector.eval(5).is_err());
        assert!(FaultInjector::parse("nth=3", 0).unwrap_err().to_string().contains("unknown fault"));
        let elsewhere = FaultInjector::parse("rank:1, batch>2", 0).unwrap();
        assert!(elsewhere.train(4, 10).is_ok(), "faults for rank 1 spare rank 0");
        assert!(FaultInjector::parse("rank:1, batch>2", 1).unwrap().train(4, 10).is_err());
    }
}
