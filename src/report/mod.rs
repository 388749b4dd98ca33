//! `ftlua report`: what happened in one or more finished (or running) runs, read back from their
//! directories — a summary table, the diagnosis, and a PNG of the curves.

mod plot;

pub use plot::write_png;

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One run directory: its settings (run.json) and the records of metrics.jsonl that belong to
/// the run as it finally went (a resume drops the records of the stretch a crash lost).
pub struct Run {
    pub name: String,
    pub dir: PathBuf,
    pub info: Value,
    pub records: Vec<Value>,
}

impl Run {
    pub fn load(dir: &Path) -> Result<Run> {
        let info_path = dir.join("run.json");
        let info_text = std::fs::read_to_string(&info_path)
            .with_context(|| format!("{} is not an ftlua run directory (no run.json)", dir.display()))?;
        let info: Value =
            serde_json::from_str(&info_text).with_context(|| format!("parsing {}", info_path.display()))?;
        let metrics = dir.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics).with_context(|| format!("reading {}", metrics.display()))?;
        Ok(Run { name: display_name(dir), dir: dir.to_path_buf(), info, records: current_records(&text) })
    }

    /// `(step, value)` of `key` in the records of `event`, in order.
    pub fn series(&self, event: &str, key: &str) -> Vec<(f64, f64)> {
        self.records
            .iter()
            .filter(|r| r["event"] == event)
            .filter_map(|r| Some((r["step"].as_f64()?, r[key].as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    }

    fn setting(&self, key: &str) -> Option<&Value> {
        key.split('.').try_fold(&self.info["settings"], |v, k| v.get(k))
    }

    /// The metric the run tracked as its best (`best.metric`), `eval_loss` by default.
    pub fn best_metric(&self) -> String {
        self.setting("best.metric").and_then(Value::as_str).unwrap_or("eval_loss").to_string()
    }

    fn last(&self, event: &str) -> Option<&Value> {
        self.records.iter().rev().find(|r| r["event"] == event)
    }
}

fn display_name(dir: &Path) -> String {
    let components: Vec<_> = dir.components().rev().take(2).collect();
    components.into_iter().rev().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The parseable records of metrics.jsonl, keeping for each `train_begin` at step k only the
/// earlier records up to step k (none on a fresh start).
fn current_records(text: &str) -> Vec<Value> {
    let mut records: Vec<Value> = Vec::new();
    for record in text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()) {
        if record["event"] == "train_begin" {
            let start = record["step"].as_u64().unwrap_or(0);
            records.retain(|r| start > 0 && r["step"].as_u64().is_some_and(|s| s <= start));
        }
        records.push(record);
    }
    records
}

/// For a K-fold or tuning directory (a summary.json written by `ftlua.tune`, beside one run
/// directory per trial): its table and the trials' directories, in order.
pub fn search_summary(dir: &Path) -> Result<Option<(String, Vec<PathBuf>)>> {
    let path = dir.join("summary.json");
    if dir.join("run.json").exists() || !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut trials: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").exists())
        .collect();
    trials.sort();
    Ok(Some((summary["table"].as_str().unwrap_or_default().to_string(), trials)))
}

/// Settings whose values differ between the runs (all of the main ones for a single run).
fn differing_settings(runs: &[Run]) -> Vec<String> {
    const MAIN: [&str; 8] =
        ["learning_rate", "batch_size", "grad_accum", "weight_decay", "warmup_steps", "max_steps", "epochs", "seed"];
    if runs.len() == 1 {
        return MAIN
            .iter()
            .filter(|k| runs[0].setting(k).is_some_and(|v| !v.is_null()))
            .map(|k| k.to_string())
            .collect();
    }
    let keys: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.info["settings"].as_object().into_iter().flatten().map(|(k, _)| k.clone()))
        .collect();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "output_dir" | "resume"))
        .filter(|k| runs.iter().any(|r| r.setting(k) != runs[0].setting(k)))
        .collect()
}

fn short(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e5) => format!("{x:.2e}"),
            Some(x) if x.fract() == 0.0 => format!("{x}"),
            Some(x) => format!("{x:.4}"),
            None => n.to_string(),
        },
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The summary table: one row per run with the settings that differ, steps and stop reason, the
/// best checkpoint and the last evaluation; then each run's diagnosis (from `diagnose`, which
/// runs the stdlib's `ftlua.diagnose` on the records).
pub fn summary(runs: &[Run], diagnose: impl Fn(&[Value]) -> Result<String>) -> Result<String> {
    let settings = differing_settings(runs);
    let mut header: Vec<String> = vec!["run".into()];
    header.extend(settings.iter().cloned());
    header.extend(["steps", "best", "last eval", "stopped because"].map(String::from));
    let mut rows = vec![header];
    for run in runs {
        let mut row = vec![run.name.clone()];
        row.extend(settings.iter().map(|k| short(run.setting(k))));
        let end = run.last("train_end");
        let steps = end.or(run.records.last()).map(|r| short(r.get("step"))).unwrap_or_else(|| "-".into());
        row.push(steps);
        let metric = run.best_metric();
        row.push(match end.and_then(|e| e.get("best")).filter(|b| !b.is_null()) {
            Some(best) => format!("{} {} @ {}", metric, short(best.get("value")), short(best.get("step"))),
            None => "-".into(),
        });
        row.push(match run.last("eval") {
            Some(eval) => ["eval_loss", "eval_exact_match", "eval_f1"]
                .iter()
                .filter(|k| eval.get(**k).is_some())
                .map(|k| format!("{} {}", k.trim_start_matches("eval_"), short(eval.get(*k))))
                .collect::<Vec<_>>()
                .join(", "),
            None => "-".into(),
        });
        row.push(end.map(|e| short(e.get("reason"))).unwrap_or_else(|| "still running, or killed".into()));
        rows.push(row);
    }
    let mut out = table(&rows);
    for run in runs {
        writeln!(out, "\n{}:", run.name)?;
        for line in diagnose(&run.records)?.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(out)
}

/// Left-aligned columns, two spaces apart, with a rule under the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
        if i == 0 {
            out += &"-".repeat(widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_drops_the_records_of_the_lost_stretch_and_a_fresh_start_drops_all() {
        let text = [
            r#"{"event":"train_begin","step":0}"#,
            r#"{"event":"log","step":1,"loss":3.0}"#,
            r#"{"event":"save","step":2}"#,
            r#"{"event":"log","step":3,"loss":2.0}"#,
            r#"{"event":"log","step":4,"lo"#,
            r#"{"event":"train_begin","step":2,"resumed_from":"checkpoint-2"}"#,
            r#"{"event":"log","step":3,"loss":2.5}"#,
        ]
        .join("\n");
        let steps = |records: Vec<Value>| -> Vec<(String, u64)> {
            records.iter().map(|r| (r["event"].as_str().unwrap().to_string(), r["step"].as_u64().unwrap())).collect()
        };
        let kept = steps(current_records(&text));
        let expected = [("train_begin", 0), ("log", 1), ("save", 2), ("train_begin", 2), ("log", 3)];
        assert_eq!(kept, expected.map(|(e, s)| (e.to_string(), s)));
        let fresh = text + "\n" + r#"{"event":"train_begin","step":0}"#;
        assert_eq!(steps(current_records(&fresh)), [("train_begin".to_string(), 0)]);
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![vec!["run".to_string(), "lr".into()], vec!["a/long-name".into(), "1e-3".into()]];
        assert_eq!(table(&rows), "run          lr\n-----------------\na/long-name  1e-3\n");
    }
}
