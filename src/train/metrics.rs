//! Answer metrics (exact match and token F1, as SQuAD computes them) and the metrics.jsonl log.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Exact match after trimming surrounding whitespace; case and punctuation count, because in an
/// invoice `INV-2025-001` and `inv 2025 001` are different answers.
pub fn exact_match(prediction: &str, reference: &str) -> bool {
    prediction.trim() == reference.trim()
}

/// F1 over whitespace tokens, or over characters when either side has a single token (Chinese
/// text and identifiers have no spaces to split on).
pub fn token_f1(prediction: &str, reference: &str) -> f64 {
    let split = |s: &str| -> Vec<String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.len() <= 1 {
            s.trim().chars().map(String::from).collect()
        } else {
            words.into_iter().map(String::from).collect()
        }
    };
    let (pred, refr) = (split(prediction), split(reference));
    if pred.is_empty() || refr.is_empty() {
        return (pred.is_empty() && refr.is_empty()) as u8 as f64;
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &refr {
        *counts.entry(t).or_default() += 1;
    }
    let mut common = 0;
    for t in &pred {
        if let Some(c) = counts.get_mut(t.as_str()) {
            if *c > 0 {
                *c -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / pred.len() as f64;
    let recall = common as f64 / refr.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Appends one JSON object per line, flushed after each so a crash loses nothing written.
pub struct JsonlWriter {
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Opens `path` for appending. A line cut short by a crash is ended first, so the records
    /// that follow stay parseable.
    pub fn create(path: &Path) -> Result<JsonlWriter> {
        let context = || format!("opening {}", path.display());
        let mut file = File::options().create(true).append(true).read(true).open(path).with_context(context)?;
        let len = file.metadata().with_context(context)?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).with_context(context)?;
            file.read_exact(&mut last).with_context(context)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").with_context(context)?;
            }
        }
        Ok(JsonlWriter { out: BufWriter::new(file) })
    }

    pub fn write(&mut self, record: &serde_json::Value) -> Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_by_a_crash_does_not_swallow_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1}\n{\"step\":2,\"lo").unwrap();
        JsonlWriter::create(&path).unwrap().write(&serde_json::json!({"step": 3})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let whole: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(whole, [serde_json::json!({"step": 1}), serde_json::json!({"step": 3})]);
    }

    #[test]
    fn f1_cases() {
        let cases = [
            ("INV-2025-001", "INV-2025-001", 1.0),
            ("Shanghai Huaxin Co.", "Shanghai Huaxin Trading Co.", 2.0 * 1.0 * 0.75 / 1.75),
            ("上海华信", "上海华信贸易", 2.0 * 1.0 * (4.0 / 6.0) / (1.0 + 4.0 / 6.0)),
            ("", "x", 0.0),
            ("abc", "xyz", 0.0),
        ];
        for (p, r, expected) in cases {
            assert!((token_f1(p, r) - expected).abs() < 1e-12, "{p} vs {r}: {}", token_f1(p, r));
        }
        assert!(exact_match(" INV-1 ", "INV-1"));
        assert!(!exact_match("inv-1", "INV-1"));
    }
}
