//! `ftlua predict` and `ftlua eval`: a trained checkpoint answering a JSONL file of questions.

use crate::data::batch::collate;
use crate::data::{load_jsonl, Dataset, EncodeOptions, FieldNames, OnBadLine, Tokenizer};
use crate::model::{generate, weights, T5Config, T5};
use crate::train::evaluate::evaluate;
use crate::train::oom::{FaultInjector, StepError};
use crate::train::Settings;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use tch::{nn::VarStore, Device};

/// How inputs are encoded and answers generated.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub max_source_len: usize,
    pub max_new_tokens: usize,
    pub num_beams: usize,
    pub length_penalty: f32,
    pub batch_size: usize,
    pub device: Device,
}

/// Loads `config.json` and the weights of a checkpoint directory (ftlua's or HF's).
pub fn load_model(dir: &Path, device: Device) -> Result<(VarStore, T5)> {
    let config = T5Config::load(&dir.join("config.json"))?;
    let vs = VarStore::new(device);
    let model = T5::new(&vs.root(), config);
    weights::load_into(&vs, dir)?;
    Ok((vs, model))
}

fn dataset(input: &Path, options: &PredictOptions, tokenizer: Tokenizer) -> Result<Dataset> {
    let loaded = load_jsonl(input, &FieldNames::default(), OnBadLine::Error)?;
    let encode = EncodeOptions {
        max_source_len: options.max_source_len,
        max_target_len: options.max_new_tokens + 1,
        tokenizer,
        ..EncodeOptions::default()
    };
    Ok(Dataset::new(loaded.samples, encode))
}

/// Adds a `prediction` field to every line of `input` (kept otherwise as it was).
pub fn predict(checkpoint: &Path, input: &Path, out: &mut dyn Write, options: &PredictOptions) -> Result<usize> {
    let (_vs, model) = load_model(checkpoint, options.device)?;
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let record: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: malformed JSON", input.display(), i + 1))?;
        let field = |name: &str| -> Result<String> {
            record[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("{}:{}: missing string field \"{name}\"", input.display(), i + 1))
        };
        let prompt = EncodeOptions::default()
            .template
            .replace("{question}", &field("question")?)
            .replace("{context}", &field("context")?);
        records.push((record, prompt));
    }
    let _no_grad = tch::no_grad_guard();
    let tok = Tokenizer::of_checkpoint(checkpoint)?;
    for chunk in records.chunks(options.batch_size.max(1)) {
        let encoded: Vec<crate::data::Encoded> = chunk
            .iter()
            .map(|(_, prompt)| {
                Ok(crate::data::Encoded { source: tok.encode(prompt, options.max_source_len)?.ids, target: vec![1] })
            })
            .collect::<Result<_>>()?;
        let batch = collate(&encoded.iter().collect::<Vec<_>>(), options.device);
        let states = model.encode(&batch.input_ids, &batch.attention_mask, false)?;
        let beams = generate::BeamOptions {
            num_beams: options.num_beams,
            max_new_tokens: options.max_new_tokens as i64,
            length_penalty: options.length_penalty,
        };
        let answers = generate::beam_search(&model, &states, &batch.attention_mask, beams)?;
        for ((record, _), ids) in chunk.iter().zip(answers) {
            let mut record = record.clone();
            record["prediction"] = serde_json::Value::String(tok.decode(&ids));
            writeln!(out, "{record}")?;
        }
    }
    Ok(records.len())
}

/// Loss, exact match and F1 of a checkpoint on a labelled JSONL file.
pub fn eval(checkpoint: &Path, input: &Path, options: &PredictOptions) -> Result<serde_json::Value> {
    let (_vs, model) = load_model(checkpoint, options.device)?;
    let data = dataset(input, options, Tokenizer::of_checkpoint(checkpoint)?)?;
    let encoded = data.encode_all()?;
    let settings = Settings {
        max_new_tokens: Some(options.max_new_tokens),
        num_beams: options.num_beams,
        length_penalty: options.length_penalty as f64,
        ..Settings::default()
    };
    let evaluation = match evaluate(
        &model,
        &encoded,
        &data,
        &settings,
        options.batch_size,
        options.device,
        &FaultInjector::default(),
    ) {
        Ok(evaluation) => evaluation,
        Err(StepError::OutOfMemory(message)) => anyhow::bail!("out of memory: {message}; try a smaller --batch-size"),
        Err(StepError::Other(error)) => return Err(error),
    };
    let m = &evaluation.metrics;
    Ok(serde_json::json!({
        "samples": data.len(), "loss": m["eval_loss"], "exact_match": m["eval_exact_match"], "f1": m["eval_f1"],
    }))
}
