//! QA samples and their JSONL loader: one `{"question", "context", "answer"}` object per line.

use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq)]
pub struct QaSample {
    pub question: String,
    pub context: String,
    pub answer: String,
}

#[derive(Debug, Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {problem}", path.display())]
    BadLine { path: PathBuf, line: usize, problem: String },
    #[error("{}: no samples", path.display())]
    Empty { path: PathBuf },
}

/// Names of the JSON fields holding each part of a sample.
#[derive(Debug, Clone)]
pub struct FieldNames {
    pub question: String,
    pub context: String,
    pub answer: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames { question: "question".into(), context: "context".into(), answer: "answer".into() }
    }
}

pub fn load_jsonl(path: &Path, fields: &FieldNames) -> Result<Vec<QaSample>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let mut samples = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let bad = |problem: String| DataError::BadLine { path: path.to_owned(), line, problem };
        let text = std::str::from_utf8(raw).map_err(|e| bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
        if text.trim().is_empty() {
            continue;
        }
        samples.push(parse_line(text, fields).map_err(bad)?);
    }
    if samples.is_empty() {
        return Err(DataError::Empty { path: path.to_owned() });
    }
    Ok(samples)
}

/// Writes samples as JSONL in the loader's default field names (so splits can be shared with
/// other tools, e.g. the HF baseline in bench/).
pub fn write_jsonl(path: &Path, samples: &[QaSample]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for s in samples {
        let record = serde_json::json!({"question": s.question, "context": s.context, "answer": s.answer});
        writeln!(out, "{record}")?;
    }
    out.flush()
}

fn parse_line(text: &str, fields: &FieldNames) -> Result<QaSample, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let object = value.as_object().ok_or_else(|| "expected a JSON object".to_string())?;
    let field = |name: &str| -> Result<String, String> {
        match object.get(name) {
            None => Err(format!("missing field \"{name}\"")),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("field \"{name}\" must be a string, got {}", json_kind(other))),
        }
    };
    let sample = QaSample {
        question: field(&fields.question)?,
        context: field(&fields.context)?,
        answer: field(&fields.answer)?,
    };
    if sample.answer.trim().is_empty() {
        return Err(format!("field \"{}\" is empty", fields.answer));
    }
    Ok(sample)
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(content: &[u8]) -> Result<Vec<QaSample>, DataError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content).unwrap();
        load_jsonl(file.path(), &FieldNames::default())
    }

    #[test]
    fn bad_lines_name_line_and_problem() {
        let good = r#"{"question": "q", "context": "c", "answer": "a"}"#;
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", ":2: malformed JSON"),
            (br#"{"question": "q", "context": "c"}"#, ":2: missing field \"answer\""),
            (
                br#"{"question": 3, "context": "c", "answer": "a"}"#,
                ":2: field \"question\" must be a string, got a number",
            ),
            (br#"{"question": "q", "context": "c", "answer": " "}"#, ":2: field \"answer\" is empty"),
            (b"{\"question\": \"\xff\"}", ":2: invalid UTF-8 at byte 14"),
            (b"[1]", ":2: expected a JSON object"),
        ];
        for (line, expected) in cases {
            let mut content = good.as_bytes().to_vec();
            content.push(b'\n');
            content.extend_from_slice(line);
            let message = load(&content).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        }
    }

    #[test]
    fn loads_samples_skipping_blank_lines() {
        let samples = load(b"{\"question\": \"q\", \"context\": \"c\", \"answer\": \"a\"}\n\n").unwrap();
        assert_eq!(samples, vec![QaSample { question: "q".into(), context: "c".into(), answer: "a".into() }]);
    }
}
