//! QA samples and their JSONL loader. Each line is one `{"question", "context", "answer"}` object,
//! or a document with many questions: `{"context", "qas": [{"question", "answer"}, ...]}`, which
//! becomes one sample per question.

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
    #[error("{}: no samples{}", path.display(), if *skipped > 0 { format!(" ({skipped} bad lines skipped)") } else { String::new() })]
    Empty { path: PathBuf, skipped: usize },
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

/// What to do with a line that is not a valid sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBadLine {
    /// Stop with an error naming the file, the line and the problem.
    #[default]
    Error,
    /// Skip it, keeping a record of the line and the problem.
    Skip,
}

/// A skipped line and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub line: usize,
    pub problem: String,
}

pub struct Loaded {
    pub samples: Vec<QaSample>,
    pub skipped: Vec<Skipped>,
}

pub fn load_jsonl(path: &Path, fields: &FieldNames, on_bad_line: OnBadLine) -> Result<Loaded, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let parsed = match std::str::from_utf8(raw) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => parse_line(text, fields),
            Err(e) => Err(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
        };
        match (parsed, on_bad_line) {
            (Ok(parsed), _) => samples.extend(parsed),
            (Err(problem), OnBadLine::Error) => {
                return Err(DataError::BadLine { path: path.to_owned(), line, problem })
            }
            (Err(problem), OnBadLine::Skip) => skipped.push(Skipped { line, problem }),
        }
    }
    if samples.is_empty() {
        return Err(DataError::Empty { path: path.to_owned(), skipped: skipped.len() });
    }
    Ok(Loaded { samples, skipped })
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

type Object = serde_json::Map<String, serde_json::Value>;

fn parse_line(text: &str, fields: &FieldNames) -> Result<Vec<QaSample>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    samples_from_value(&value, fields)
}

/// The samples of one record: a `{question, context, answer}` object, or a document
/// `{context, qas: [{question, answer}, ...]}`. The error says which field is wrong.
pub fn samples_from_value(value: &serde_json::Value, fields: &FieldNames) -> Result<Vec<QaSample>, String> {
    let object = value.as_object().ok_or_else(|| "expected a JSON object".to_string())?;
    let context = string_field(object, &fields.context, "")?;
    let Some(qas) = object.get("qas") else {
        return Ok(vec![sample(object, fields, context, "")?]);
    };
    let qas = qas.as_array().ok_or_else(|| format!("field \"qas\" must be an array, got {}", json_kind(qas)))?;
    if qas.is_empty() {
        return Err("field \"qas\" is empty".into());
    }
    qas.iter()
        .enumerate()
        .map(|(i, qa)| {
            let where_ = format!("qas[{i}]: ");
            let qa = qa.as_object().ok_or_else(|| format!("{where_}expected an object, got {}", json_kind(qa)))?;
            sample(qa, fields, context.clone(), &where_)
        })
        .collect()
}

fn sample(object: &Object, fields: &FieldNames, context: String, where_: &str) -> Result<QaSample, String> {
    let sample = QaSample {
        question: string_field(object, &fields.question, where_)?,
        context,
        answer: string_field(object, &fields.answer, where_)?,
    };
    if sample.answer.trim().is_empty() {
        return Err(format!("{where_}field \"{}\" is empty", fields.answer));
    }
    Ok(sample)
}

fn string_field(object: &Object, name: &str, where_: &str) -> Result<String, String> {
    match object.get(name) {
        None => Err(format!("{where_}missing field \"{name}\"")),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{where_}field \"{name}\" must be a string, got {}", json_kind(other))),
    }
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

    fn load(content: &[u8], policy: OnBadLine) -> Result<Loaded, DataError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content).unwrap();
        load_jsonl(file.path(), &FieldNames::default(), policy)
    }

    const GOOD: &str = r#"{"question": "q", "context": "c", "answer": "a"}"#;

    const BAD_LINES: &[(&[u8], &str)] = &[
        (b"{not json", ":2: malformed JSON"),
        (br#"{"question": "q", "context": "c"}"#, ":2: missing field \"answer\""),
        (br#"{"question": 3, "context": "c", "answer": "a"}"#, ":2: field \"question\" must be a string, got a number"),
        (br#"{"question": "q", "context": "c", "answer": " "}"#, ":2: field \"answer\" is empty"),
        (b"{\"question\": \"\xff\"}", ":2: invalid UTF-8 at byte 14"),
        (b"[1]", ":2: expected a JSON object"),
        (br#"{"context": "c", "qas": [{"question": "q"}]}"#, ":2: qas[0]: missing field \"answer\""),
        (br#"{"context": "c", "qas": []}"#, ":2: field \"qas\" is empty"),
    ];

    #[test]
    fn bad_lines_name_file_line_and_problem() {
        for (line, expected) in BAD_LINES {
            let content = [GOOD.as_bytes(), b"\n", line].concat();
            let message = load(&content, OnBadLine::Error).err().expect("an error").to_string();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
            assert!(message.contains(".tmp"), "{message:?} should name the file");
        }
    }

    #[test]
    fn skipping_bad_lines_counts_them() {
        for (line, expected) in BAD_LINES {
            let content = [GOOD.as_bytes(), b"\n", line, b"\n", GOOD.as_bytes()].concat();
            let loaded = load(&content, OnBadLine::Skip).unwrap();
            assert_eq!(loaded.samples.len(), 2);
            assert_eq!(loaded.skipped.len(), 1);
            assert_eq!(loaded.skipped[0].line, 2);
            let problem = &loaded.skipped[0].problem;
            assert!(problem.starts_with(expected.trim_start_matches(":2: ")), "{problem:?} vs {expected:?}");
        }
    }

    #[test]
    fn documents_with_many_questions_become_one_sample_each() {
        let doc = br#"{"context": "INV-1 total 5", "qas": [{"question": "no?", "answer": "INV-1"}, {"question": "total?", "answer": "5"}]}"#;
        let loaded = load(doc, OnBadLine::Error).unwrap();
        let answers: Vec<&str> = loaded.samples.iter().map(|s| s.answer.as_str()).collect();
        assert_eq!(answers, ["INV-1", "5"]);
        assert!(loaded.samples.iter().all(|s| s.context == "INV-1 total 5"));
    }

    #[test]
    fn loads_samples_skipping_blank_lines() {
        let loaded = load(format!("{GOOD}\n\n").as_bytes(), OnBadLine::Error).unwrap();
        assert_eq!(loaded.samples, vec![QaSample { question: "q".into(), context: "c".into(), answer: "a".into() }]);
    }
}
