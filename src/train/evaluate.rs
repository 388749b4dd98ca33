//! Evaluation: loss on the eval set and the answers the model generates for it.

use super::events::Metrics;
use super::metrics::{exact_match, token_f1};
use super::oom::{FaultInjector, StepError};
use super::settings::Settings;
use crate::data::batch::collate;
use crate::data::{Dataset, Encoded};
use crate::model::{generate, T5};
use tch::Device;

/// Predictions shown in the log after each evaluation.
const SHOWN_EXAMPLES: usize = 3;

pub struct Evaluation {
    pub metrics: Metrics,
    /// The first few (question, prediction, reference) triples, to show what the model answers.
    pub examples: Vec<(String, String, String)>,
    /// Every generated answer, in eval-set order (for metrics written in Lua).
    pub predictions: Vec<String>,
}

/// Eval loss (token-weighted mean over the eval set) and exact match and F1 of generated answers
/// (greedy, or beam search with `num_beams`),
/// in batches of `batch_size`. An out-of-memory error is returned as such, for the caller to retry
/// with a smaller eval batch.
pub fn evaluate(
    model: &T5,
    encoded: &[Encoded],
    data: &Dataset,
    settings: &Settings,
    batch_size: usize,
    device: Device,
    injector: &FaultInjector,
) -> Result<Evaluation, StepError> {
    let _no_grad = tch::no_grad_guard();
    let beams = generate::BeamOptions {
        num_beams: settings.num_beams,
        max_new_tokens: settings.max_new_tokens.unwrap_or(data.options.max_target_len) as i64,
        length_penalty: settings.length_penalty as f32,
    };
    let (mut loss_sum, mut tokens, mut exact, mut f1) = (0.0, 0usize, 0usize, 0.0);
    let mut examples = Vec::new();
    let mut predictions = Vec::with_capacity(encoded.len());
    let samples: Vec<&Encoded> = encoded.iter().collect();
    for (chunk_index, chunk) in samples.chunks(batch_size).enumerate() {
        let batch = collate(chunk, device);
        let encoder_states = model.encode(&batch.input_ids, &batch.attention_mask, false)?;
        injector.eval(batch.samples)?;
        let logits = model.decode(&model.shift_right(&batch.labels)?, &encoder_states, &batch.attention_mask, false)?;
        loss_sum += T5::loss_sum(&logits, &batch.labels)?.f_double_value(&[])?;
        tokens += batch.target_tokens;
        let generated = generate::beam_search(model, &encoder_states, &batch.attention_mask, beams)?;
        for (i, ids) in generated.iter().enumerate() {
            let prediction = data.options.tokenizer.decode(ids);
            let sample = &data.samples[chunk_index * batch_size + i];
            exact += exact_match(&prediction, &sample.answer) as usize;
            f1 += token_f1(&prediction, &sample.answer);
            if examples.len() < SHOWN_EXAMPLES {
                examples.push((sample.question.clone(), prediction.clone(), sample.answer.clone()));
            }
            predictions.push(prediction);
        }
    }
    let n = encoded.len().max(1) as f64;
    let metrics = Metrics::from([
        ("eval_loss".to_string(), loss_sum / tokens.max(1) as f64),
        ("eval_exact_match".to_string(), exact as f64 / n),
        ("eval_f1".to_string(), f1 / n),
    ]);
    Ok(Evaluation { metrics, examples, predictions })
}
