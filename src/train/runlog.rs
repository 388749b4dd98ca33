//! The run's one writer: every record goes to metrics.jsonl (always), to TensorBoard's event file
//! (unless `report_to = "none"`), and to the in-memory history the end-of-run diagnosis reads.

use super::metrics::JsonlWriter;
use super::tensorboard::EventWriter;
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

pub struct RunLog {
    /// None on the ranks other than 0, which keep only the history.
    jsonl: Option<JsonlWriter>,
    tensorboard: Option<EventWriter>,
    pub history: Vec<Value>,
}

impl RunLog {
    pub fn create(output_dir: &Path, tensorboard: bool, settings_text: &str) -> Result<RunLog> {
        let tensorboard = match tensorboard {
            true => {
                let mut writer = EventWriter::create(output_dir)?;
                writer.text(0, "run/settings", settings_text)?;
                Some(writer)
            }
            false => None,
        };
        let jsonl = Some(JsonlWriter::create(&output_dir.join("metrics.jsonl"))?);
        Ok(RunLog { jsonl, tensorboard, history: Vec::new() })
    }

    /// A log that writes no file (data-parallel ranks other than 0).
    pub fn in_memory() -> RunLog {
        RunLog { jsonl: None, tensorboard: None, history: Vec::new() }
    }

    /// Writes `record`, stamped with the wall-clock time (`"time"`, Unix seconds).
    pub fn record(&mut self, record: &Value) -> Result<()> {
        let mut record = record.clone();
        record["time"] = serde_json::json!(super::tensorboard::wall_time());
        let record = &record;
        if let Some(jsonl) = &mut self.jsonl {
            jsonl.write(record)?;
        }
        if let Some(tb) = &mut self.tensorboard {
            let step = record["step"].as_u64().unwrap_or(0);
            let scalars = scalars(record);
            if !scalars.is_empty() {
                let refs: Vec<(&str, f64)> = scalars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                tb.scalars(step, &refs)?;
            }
        }
        self.history.push(record.clone());
        Ok(())
    }
}

/// TensorBoard tags for a record, named as HF's Trainer names them (`train/loss`, `eval/loss`).
fn scalars(record: &Value) -> Vec<(String, f64)> {
    let numbers = || record.as_object().into_iter().flatten().filter_map(|(k, v)| v.as_f64().map(|n| (k.as_str(), n)));
    match record["event"].as_str() {
        Some("log") => {
            numbers().filter(|(k, _)| !matches!(*k, "step" | "time")).map(|(k, v)| (format!("train/{k}"), v)).collect()
        }
        Some("eval") => {
            numbers().filter_map(|(k, v)| k.strip_prefix("eval_").map(|name| (format!("eval/{name}"), v))).collect()
        }
        Some("oom") if record["phase"] == "eval" => {
            record["to"].as_f64().map(|b| vec![("eval/batch_size".to_string(), b)]).unwrap_or_default()
        }
        Some("oom") => match (record["to"][0].as_f64(), record["to"][1].as_f64()) {
            (Some(b), Some(a)) => vec![("train/batch_size".to_string(), b), ("train/grad_accum".to_string(), a)],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_follow_hf_names() {
        let mut log =
            scalars(&json!({"event": "log", "step": 5, "loss": 1.5, "learning_rate": 1e-3, "grad_norm": null}));
        log.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(log, [("train/learning_rate".to_string(), 1e-3), ("train/loss".to_string(), 1.5)]);
        let eval = scalars(&json!({"event": "eval", "step": 5, "epoch": 0.5, "eval_loss": 0.7}));
        assert_eq!(eval, [("eval/loss".to_string(), 0.7)]);
        let oom = scalars(&json!({"event": "oom", "step": 5, "from": [8, 1], "to": [4, 2]}));
        assert_eq!(oom.len(), 2);
        assert!(scalars(&json!({"event": "save", "step": 5})).is_empty());
    }
}
