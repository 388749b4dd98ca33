//! The events a run fires and the decisions handlers may return.

use anyhow::{bail, Result};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    TrainBegin,
    EpochBegin,
    StepBegin,
    SubstepEnd,
    PreOptimizerStep,
    StepEnd,
    Log,
    EvalBegin,
    EvalEnd,
    Save,
    Oom,
    Nan,
    EpochEnd,
    TrainEnd,
}

impl Event {
    pub const ALL: [Event; 14] = [
        Event::TrainBegin,
        Event::EpochBegin,
        Event::StepBegin,
        Event::SubstepEnd,
        Event::PreOptimizerStep,
        Event::StepEnd,
        Event::Log,
        Event::EvalBegin,
        Event::EvalEnd,
        Event::Save,
        Event::Oom,
        Event::Nan,
        Event::EpochEnd,
        Event::TrainEnd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::TrainBegin => "train_begin",
            Event::EpochBegin => "epoch_begin",
            Event::StepBegin => "step_begin",
            Event::SubstepEnd => "substep_end",
            Event::PreOptimizerStep => "pre_optimizer_step",
            Event::StepEnd => "step_end",
            Event::Log => "log",
            Event::EvalBegin => "eval_begin",
            Event::EvalEnd => "eval_end",
            Event::Save => "save",
            Event::Oom => "oom",
            Event::Nan => "nan",
            Event::EpochEnd => "epoch_end",
            Event::TrainEnd => "train_end",
        }
    }

    pub fn from_name(name: &str) -> Result<Event> {
        match Event::ALL.iter().find(|e| e.name() == name) {
            Some(e) => Ok(*e),
            None => {
                let names: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
                bail!("unknown event {name:?}; events are: {}", names.join(", "))
            }
        }
    }
}

/// What handlers asked for; the trainer validates and applies it between steps.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// Stop training, with the reason given (or the handler that asked).
    pub stop: Option<String>,
    pub save: bool,
    pub eval: bool,
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
    pub grad_accum: Option<usize>,
    pub weight_decay: Option<f64>,
    /// Search for the largest micro-batch that fits, up to this many samples (power-of-two then
    /// binary search on the longest samples), keeping the effective batch.
    pub find_batch_size: Option<usize>,
    /// Cut training prompts to this many tokens from now on (an out-of-memory last resort).
    pub max_source_len: Option<usize>,
    /// Delete these checkpoints (by step); the best and the newest are always kept.
    pub delete_checkpoints: Vec<u64>,
}

impl Decision {
    /// Folds a later handler's decision into this one: flags accumulate, later values win.
    pub fn merge(&mut self, other: Decision) {
        self.stop = self.stop.take().or(other.stop);
        self.save |= other.save;
        self.eval |= other.eval;
        self.lr = other.lr.or(self.lr);
        self.batch_size = other.batch_size.or(self.batch_size);
        self.grad_accum = other.grad_accum.or(self.grad_accum);
        self.weight_decay = other.weight_decay.or(self.weight_decay);
        self.find_batch_size = other.find_batch_size.or(self.find_batch_size);
        self.max_source_len = other.max_source_len.or(self.max_source_len);
        self.delete_checkpoints.extend(other.delete_checkpoints);
    }

    pub fn is_empty(&self) -> bool {
        *self == Decision::default()
    }

    /// Checks ranges; an invalid decision is an error naming the handler's source.
    pub fn validate(&self, source: &str) -> Result<()> {
        if let Some(lr) = self.lr {
            if !(lr >= 0.0 && lr.is_finite()) {
                bail!("{source} returned lr = {lr}: expected a finite number ≥ 0");
            }
        }
        if let Some(wd) = self.weight_decay {
            if !(wd >= 0.0 && wd.is_finite()) {
                bail!("{source} returned weight_decay = {wd}: expected a finite number ≥ 0");
            }
        }
        if self.batch_size == Some(0) {
            bail!("{source} returned batch_size = 0: expected a whole number ≥ 1");
        }
        if self.grad_accum == Some(0) {
            bail!("{source} returned grad_accum = 0: expected a whole number ≥ 1");
        }
        if self.max_source_len.is_some_and(|n| n < 8) {
            bail!(
                "{source} returned max_source_len = {}: expected at least 8 tokens",
                self.max_source_len.unwrap_or(0)
            );
        }
        if self.find_batch_size == Some(0) {
            bail!("{source} returned find_batch_size = 0: expected the largest batch to try, ≥ 1");
        }
        Ok(())
    }
}

/// Metric name → value, as reported by an evaluation.
pub type Metrics = BTreeMap<String, f64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for e in Event::ALL {
            assert_eq!(Event::from_name(e.name()).unwrap(), e);
        }
        assert!(Event::from_name("step_ending").unwrap_err().to_string().contains("step_end"));
    }

    #[test]
    fn merge_keeps_first_stop_reason_and_latest_values() {
        let mut d = Decision { stop: Some("early stopping".into()), lr: Some(1e-3), ..Decision::default() };
        d.merge(Decision { stop: Some("other".into()), lr: Some(2e-3), save: true, ..Decision::default() });
        assert_eq!(d.stop.as_deref(), Some("early stopping"));
        assert_eq!(d.lr, Some(2e-3));
        assert!(d.save);
    }

    #[test]
    fn validation_rejects_out_of_range_values() {
        let cases = [
            (Decision { lr: Some(-1.0), ..Decision::default() }, "lr = -1"),
            (Decision { batch_size: Some(0), ..Decision::default() }, "batch_size = 0"),
            (Decision { grad_accum: Some(0), ..Decision::default() }, "grad_accum = 0"),
            (Decision { weight_decay: Some(f64::NAN), ..Decision::default() }, "weight_decay = NaN"),
        ];
        for (decision, expected) in cases {
            let message = decision.validate("cb").unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
        }
    }
}
