//! Trainer settings: collected from the script's table, overridden by `--set`, validated once
//! before any work. HF `TrainingArguments` names are accepted as aliases.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;

/// A raw setting value, from Lua or from the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Bool(bool),
    Text(String),
}

impl Value {
    /// Reads a `--set` value: a number, `true`/`false`, or text.
    pub fn parse(text: &str) -> Value {
        match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => text.parse::<f64>().map(Value::Number).unwrap_or_else(|_| Value::Text(text.to_owned())),
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Number(n) => format!("the number {n}"),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Text(t) => format!("the string {t:?}"),
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum SettingsError {
    #[error("unknown setting `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown { key: String, suggestion: Option<String> },
    #[error("setting `{key}`: expected {expected}, got {got}")]
    WrongType { key: String, expected: &'static str, got: String },
    #[error("setting `{key}`: {problem}")]
    OutOfRange { key: String, problem: String },
    #[error("settings conflict: {0}")]
    Conflict(String),
}

/// Which checkpoint is "best", and whether to end the run with its weights.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BestModel {
    pub metric: String,
    pub greater_is_better: bool,
    pub load_at_end: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Settings {
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub epochs: f64,
    /// Optimizer steps; when unset, derived from `epochs`.
    pub max_steps: Option<u64>,
    /// Wall-clock budget for training in seconds; the run stops (and evaluates) when it is spent.
    pub max_seconds: Option<f64>,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub warmup_steps: u64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    pub max_grad_norm: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    pub log_every: u64,
    /// Evaluate every N optimizer steps; 0 evaluates only at the end.
    pub eval_every: u64,
    /// `eval_every = "epoch"`: evaluate at the end of every epoch.
    pub eval_each_epoch: bool,
    /// Save a checkpoint every N optimizer steps; 0 saves only at the end.
    pub save_every: u64,
    /// `save_every = "epoch"`: save at the end of every epoch.
    pub save_each_epoch: bool,
    pub save_total_limit: Option<usize>,
    pub eval_batch_size: usize,
    /// Generation length during eval; defaults to the data's max_target_len.
    pub max_new_tokens: Option<usize>,
    /// Beams for evaluation's generation (1: greedy) and their length penalty, as HF's generate.
    pub num_beams: usize,
    pub length_penalty: f64,
    pub best: BestModel,
    pub seed: u64,
    pub output_dir: Option<PathBuf>,
    /// A subdirectory of `output_dir` for this run (one trial of a search, one fold).
    pub run_name: Option<String>,
    /// Continue from a checkpoint: "latest" (the newest in output_dir) or a checkpoint directory.
    pub resume: Option<String>,
    /// Consecutive steps with a non-finite loss tolerated (each skipped) before the run stops.
    pub max_nan_steps: u64,
    /// Batch samples of similar length together (less padding), as HF's `group_by_length`.
    pub group_by_length: bool,
    /// Cap on a micro-batch's padded prompt tokens (samples × longest prompt): a step's samples
    /// are then split into more, smaller micro-batches where prompts are long.
    pub max_batch_tokens: Option<usize>,
    /// CPU memory budget for the run in bytes ("1.5GiB" in scripts): allocations past it fail
    /// and are recovered by the `oom` policy.
    pub max_memory: Option<u64>,
    /// Write TensorBoard event files (`report_to = "tensorboard"`, the default) or not ("none");
    /// metrics.jsonl is always written.
    pub report_to_tensorboard: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            learning_rate: 1e-3,
            weight_decay: 0.0,
            epochs: 3.0,
            max_steps: None,
            max_seconds: None,
            batch_size: 16,
            grad_accum: 1,
            warmup_steps: 0,
            max_grad_norm: 1.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            log_every: 10,
            eval_every: 0,
            eval_each_epoch: false,
            save_every: 0,
            save_each_epoch: false,
            save_total_limit: None,
            eval_batch_size: 64,
            max_new_tokens: None,
            num_beams: 1,
            length_penalty: 1.0,
            best: BestModel { metric: "eval_loss".into(), greater_is_better: false, load_at_end: false },
            seed: 42,
            output_dir: None,
            run_name: None,
            resume: None,
            max_nan_steps: 3,
            group_by_length: false,
            max_batch_tokens: None,
            max_memory: None,
            report_to_tensorboard: true,
        }
    }
}

/// Every setting name, for validation and suggestions.
pub const KEYS: &[&str] = &[
    "learning_rate",
    "weight_decay",
    "epochs",
    "max_steps",
    "max_seconds",
    "batch_size",
    "grad_accum",
    "warmup_steps",
    "max_grad_norm",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "log_every",
    "eval_every",
    "save_every",
    "save_total_limit",
    "eval_batch_size",
    "max_new_tokens",
    "num_beams",
    "length_penalty",
    "best.metric",
    "best.greater_is_better",
    "best.load_at_end",
    "seed",
    "output_dir",
    "run_name",
    "resume",
    "max_nan_steps",
    "group_by_length",
    "max_batch_tokens",
    "max_memory",
    "report_to",
];

/// HF `TrainingArguments` names and the settings they mean.
const ALIASES: &[(&str, &str)] = &[
    ("num_train_epochs", "epochs"),
    ("per_device_train_batch_size", "batch_size"),
    ("per_device_eval_batch_size", "eval_batch_size"),
    ("gradient_accumulation_steps", "grad_accum"),
    ("eval_steps", "eval_every"),
    ("save_steps", "save_every"),
    ("logging_steps", "log_every"),
    ("metric_for_best_model", "best.metric"),
    ("greater_is_better", "best.greater_is_better"),
    ("load_best_model_at_end", "best.load_at_end"),
];

/// The canonical name of `key`, or an error suggesting the nearest known one.
pub fn canonical_key(key: &str) -> Result<&'static str, SettingsError> {
    if let Some(k) = KEYS.iter().find(|k| **k == key) {
        return Ok(k);
    }
    if let Some((_, k)) = ALIASES.iter().find(|(alias, _)| *alias == key) {
        return Ok(k);
    }
    let suggestion = KEYS
        .iter()
        .chain(ALIASES.iter().map(|(alias, _)| alias))
        .map(|k| (strsim::normalized_damerau_levenshtein(key, k), *k))
        .filter(|(score, _)| *score > 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_owned());
    Err(SettingsError::Unknown { key: key.to_owned(), suggestion })
}

impl Settings {
    /// Builds settings from raw values (script first, then overrides), validating each.
    pub fn from_values(values: &BTreeMap<String, Value>) -> Result<Settings, SettingsError> {
        let mut s = Settings::default();
        let mut greater_is_better = None;
        for (key, value) in values {
            let key = canonical_key(key)?;
            match key {
                "learning_rate" => s.learning_rate = positive(key, value)?,
                "weight_decay" => s.weight_decay = non_negative(key, value)?,
                "epochs" => s.epochs = positive(key, value)?,
                "max_steps" => s.max_steps = Some(count(key, value, 1)? as u64),
                "max_seconds" => s.max_seconds = Some(positive(key, value)?),
                "batch_size" => s.batch_size = count(key, value, 1)?,
                "grad_accum" => s.grad_accum = count(key, value, 1)?,
                "warmup_steps" => s.warmup_steps = count(key, value, 0)? as u64,
                "max_grad_norm" => s.max_grad_norm = non_negative(key, value)?,
                "adam_beta1" => s.adam_beta1 = unit_interval(key, value)?,
                "adam_beta2" => s.adam_beta2 = unit_interval(key, value)?,
                "adam_epsilon" => s.adam_epsilon = positive(key, value)?,
                "log_every" => s.log_every = count(key, value, 1)? as u64,
                "eval_every" if *value == Value::Text("epoch".into()) => s.eval_each_epoch = true,
                "save_every" if *value == Value::Text("epoch".into()) => s.save_each_epoch = true,
                "eval_every" => s.eval_every = count(key, value, 0)? as u64,
                "save_every" => s.save_every = count(key, value, 0)? as u64,
                "save_total_limit" => s.save_total_limit = Some(count(key, value, 1)?),
                "eval_batch_size" => s.eval_batch_size = count(key, value, 1)?,
                "max_new_tokens" => s.max_new_tokens = Some(count(key, value, 1)?),
                "num_beams" => s.num_beams = count(key, value, 1)?,
                "length_penalty" => s.length_penalty = number(key, value)?,
                "best.metric" => s.best.metric = text(key, value)?,
                "best.greater_is_better" => greater_is_better = Some(boolean(key, value)?),
                "best.load_at_end" => s.best.load_at_end = boolean(key, value)?,
                "seed" => s.seed = count(key, value, 0)? as u64,
                "output_dir" => s.output_dir = Some(PathBuf::from(text(key, value)?)),
                "run_name" => s.run_name = Some(text(key, value)?).filter(|n| !n.is_empty()),
                "resume" => s.resume = Some(text(key, value)?).filter(|r| !r.is_empty()),
                "max_nan_steps" => s.max_nan_steps = count(key, value, 1)? as u64,
                "group_by_length" => s.group_by_length = boolean(key, value)?,
                "max_batch_tokens" => s.max_batch_tokens = Some(count(key, value, 1)?),
                "max_memory" => s.max_memory = Some(memory_size(key, value)?),
                "report_to" => s.report_to_tensorboard = report_to(key, value)?,
                _ => unreachable!("every key in KEYS is handled"),
            }
        }
        if !s.best.metric.starts_with("eval_") {
            s.best.metric = format!("eval_{}", s.best.metric);
        }
        // HF's rule: a metric is better lower if it is a loss, higher otherwise, unless told.
        s.best.greater_is_better = greater_is_better.unwrap_or(!s.best.metric.ends_with("loss"));
        if s.best.load_at_end
            && s.eval_every == 0
            && !s.eval_each_epoch
            && values.keys().all(|k| canonical_key(k) != Ok("best.metric"))
        {
            return Err(SettingsError::Conflict(
                "best.load_at_end needs evaluations to choose from: set eval_every (and best.metric)".into(),
            ));
        }
        Ok(s)
    }
}

fn number(key: &str, value: &Value) -> Result<f64, SettingsError> {
    match value {
        Value::Number(n) => Ok(*n),
        other => Err(SettingsError::WrongType { key: key.into(), expected: "a number", got: other.describe() }),
    }
}

fn positive(key: &str, value: &Value) -> Result<f64, SettingsError> {
    let n = number(key, value)?;
    if n > 0.0 && n.is_finite() {
        Ok(n)
    } else {
        Err(SettingsError::OutOfRange { key: key.into(), problem: format!("must be a positive number, got {n}") })
    }
}

fn non_negative(key: &str, value: &Value) -> Result<f64, SettingsError> {
    let n = number(key, value)?;
    if n >= 0.0 && n.is_finite() {
        Ok(n)
    } else {
        Err(SettingsError::OutOfRange { key: key.into(), problem: format!("must be zero or more, got {n}") })
    }
}

fn unit_interval(key: &str, value: &Value) -> Result<f64, SettingsError> {
    let n = number(key, value)?;
    if (0.0..1.0).contains(&n) {
        Ok(n)
    } else {
        Err(SettingsError::OutOfRange { key: key.into(), problem: format!("must be in [0, 1), got {n}") })
    }
}

fn count(key: &str, value: &Value, min: usize) -> Result<usize, SettingsError> {
    let n = number(key, value)?;
    if n.fract() != 0.0 || n < min as f64 || n > u32::MAX as f64 {
        return Err(SettingsError::OutOfRange {
            key: key.into(),
            problem: format!("must be a whole number ≥ {min}, got {n}"),
        });
    }
    Ok(n as usize)
}

fn memory_size(key: &str, value: &Value) -> Result<u64, SettingsError> {
    let parsed = match value {
        Value::Number(n) if *n > 0.0 => Some(*n as u64),
        Value::Text(t) => super::oom::parse_size(t),
        _ => None,
    };
    parsed.filter(|&b| b > 0).ok_or_else(|| SettingsError::OutOfRange {
        key: key.into(),
        problem: format!("expected a size like \"1.5GiB\" or \"800MB\", got {}", value.describe()),
    })
}

/// `report_to`: "tensorboard", "jsonl", "none", or a comma-separated list (a Lua list is joined).
fn report_to(key: &str, value: &Value) -> Result<bool, SettingsError> {
    let text = text(key, value)?;
    let mut tensorboard = false;
    for target in text.split(',').map(str::trim) {
        match target {
            "tensorboard" => tensorboard = true,
            "jsonl" | "none" => {}
            other => {
                return Err(SettingsError::OutOfRange {
                    key: key.into(),
                    problem: format!("unknown target {other:?} (expected \"tensorboard\", \"jsonl\" or \"none\")"),
                })
            }
        }
    }
    Ok(tensorboard)
}

fn boolean(key: &str, value: &Value) -> Result<bool, SettingsError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(SettingsError::WrongType { key: key.into(), expected: "true or false", got: other.describe() }),
    }
}

fn text(key: &str, value: &Value) -> Result<String, SettingsError> {
    match value {
        Value::Text(t) => Ok(t.clone()),
        other => Err(SettingsError::WrongType { key: key.into(), expected: "a string", got: other.describe() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pairs: &[(&str, Value)]) -> Result<Settings, SettingsError> {
        Settings::from_values(&pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn refuses_bad_settings_with_clear_messages() {
        let cases: &[(&str, Value, &str)] = &[
            ("learnig_rate", Value::Number(1e-3), "unknown setting `learnig_rate` (did you mean `learning_rate`?)"),
            ("learning_rate", Value::Number(-1.0), "setting `learning_rate`: must be a positive number, got -1"),
            ("batch_size", Value::Number(0.0), "setting `batch_size`: must be a whole number ≥ 1, got 0"),
            ("grad_accum", Value::Number(0.0), "setting `grad_accum`: must be a whole number ≥ 1, got 0"),
            (
                "batch_size",
                Value::Text("big".into()),
                "setting `batch_size`: expected a number, got the string \"big\"",
            ),
            ("best.load_at_end", Value::Bool(true), "best.load_at_end needs evaluations"),
            (
                "save_every",
                Value::Text("weekly".into()),
                "setting `save_every`: expected a number, got the string \"weekly\"",
            ),
        ];
        for (key, value, expected) in cases {
            let message = build(&[(key, value.clone())]).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        }
    }

    #[test]
    fn accepts_hf_aliases_and_infers_metric_direction() {
        let s = build(&[
            ("per_device_train_batch_size", Value::Number(8.0)),
            ("gradient_accumulation_steps", Value::Number(4.0)),
            ("metric_for_best_model", Value::Text("exact_match".into())),
            ("eval_steps", Value::Number(50.0)),
        ])
        .unwrap();
        assert_eq!((s.batch_size, s.grad_accum, s.eval_every), (8, 4, 50));
        let epochly =
            build(&[("eval_every", Value::Text("epoch".into())), ("save_steps", Value::Text("epoch".into()))]).unwrap();
        assert!(epochly.eval_each_epoch && epochly.save_each_epoch);
        assert_eq!(s.best.metric, "eval_exact_match");
        assert!(s.best.greater_is_better);
        assert!(!build(&[]).unwrap().best.greater_is_better);
    }

    #[test]
    fn parses_command_line_values() {
        assert_eq!(Value::parse("3e-4"), Value::Number(3e-4));
        assert_eq!(Value::parse("true"), Value::Bool(true));
        assert_eq!(Value::parse("runs/x"), Value::Text("runs/x".into()));
    }
}
