//! The trainer's state: what handlers see as a snapshot and what `trainer_state.json` keeps.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Best {
    pub metric: String,
    pub value: f64,
    pub step: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainerState {
    /// Fractional epochs completed.
    pub epoch: f64,
    pub global_step: u64,
    pub max_steps: u64,
    pub samples_seen: u64,
    pub tokens_seen: u64,
    pub lr: f64,
    pub batch_size: usize,
    pub grad_accum: usize,
    /// Evaluation batch; an out-of-memory error during evaluation halves it (and only it).
    pub eval_batch_size: usize,
    pub weight_decay: f64,
    /// Loss of the last optimizer step.
    pub loss: Option<f64>,
    /// Mean loss since the previous log event.
    pub train_loss: Option<f64>,
    pub grad_norm: Option<f64>,
    pub best: Option<Best>,
    pub elapsed_seconds: f64,
    pub stop_reason: Option<String>,
    /// A learning rate a policy fixed, replacing the schedule's.
    pub lr_override: Option<f64>,
    /// Where the data stands: the epoch being read and how many of its samples were consumed.
    pub epoch_index: u64,
    pub epoch_cursor: usize,
    /// Loss summed over the steps since the last log event, and their count.
    pub log_loss_sum: f64,
    pub log_loss_steps: u64,
    /// Time spent in steps and in evaluations (for the time-budget projection).
    pub step_seconds: f64,
    /// Seconds of `step_seconds` the step waited for its batches (prefetch not ready, or none).
    #[serde(default)]
    pub data_wait_seconds: f64,
    pub eval_seconds: f64,
    /// `max_steps` from the settings (or epochs), before any time-budget projection.
    pub planned_max_steps: u64,
    /// A prompt cap a policy imposed during the run (out-of-memory last resort).
    pub max_source_len: Option<usize>,
    /// Processes training together (data-parallel); `batch_size` is per process.
    #[serde(default = "one")]
    pub world_size: usize,
}

fn one() -> usize {
    1
}
