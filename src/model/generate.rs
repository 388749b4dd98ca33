//! Decoding: batched greedy generation with a key/value cache.

use super::t5::{TorchResult, T5};
use tch::{Kind, Tensor};

/// Greedy decoding from encoder states; returns each row's tokens up to (not including) EOS.
pub fn greedy(
    model: &T5,
    encoded: &Tensor,
    attention_mask: &Tensor,
    max_new_tokens: i64,
) -> TorchResult<Vec<Vec<i64>>> {
    let _no_grad = tch::no_grad_guard();
    let batch = encoded.size()[0] as usize;
    let mut cache = model.start_decoding(encoded, attention_mask)?;
    let eos = model.config.eos_token_id;
    let mut tokens =
        Tensor::f_full([batch as i64, 1], model.config.decoder_start_token_id, (Kind::Int64, encoded.device()))?;
    let mut outputs = vec![Vec::new(); batch];
    let mut finished = vec![false; batch];
    for _ in 0..max_new_tokens {
        let next = model.decode_step(&tokens, &mut cache)?.f_argmax(-1, false)?;
        let next_ids = Vec::<i64>::try_from(&next)?;
        for ((output, done), &id) in outputs.iter_mut().zip(finished.iter_mut()).zip(&next_ids) {
            if *done {
                continue;
            }
            if id == eos {
                *done = true;
            } else {
                output.push(id);
            }
        }
        if finished.iter().all(|&done| done) {
            break;
        }
        tokens = next.f_unsqueeze(1)?;
    }
    Ok(outputs)
}

/// Beam search options, with HF `generate`'s defaults (length_penalty 1.0, early_stopping False).
#[derive(Debug, Clone, Copy)]
pub struct BeamOptions {
    pub num_beams: usize,
    pub max_new_tokens: i64,
    /// Finished hypotheses score `sum of log-probabilities / length^length_penalty`: above 0
    /// favours longer answers, below 0 shorter ones.
    pub length_penalty: f32,
}

/// One batch row's search: the running beams and the best finished hypotheses so far.
struct Search {
    running: Vec<(f32, Vec<i64>)>,
    finished: Vec<(f32, Vec<i64>)>,
    /// False once no running beam can beat the worst of a full finished set (HF's heuristic).
    can_improve: bool,
}

/// Beam search from encoder states, as HF transformers' `generate(num_beams=...)` decides: at each
/// step the top 2 × num_beams continuations of all beams; those ending in EOS (or at the length
/// limit) among the first num_beams become finished hypotheses, the best num_beams others run on.
/// Returns each row's best hypothesis up to (not including) EOS.
pub fn beam_search(
    model: &T5,
    encoded: &Tensor,
    attention_mask: &Tensor,
    options: BeamOptions,
) -> TorchResult<Vec<Vec<i64>>> {
    let _no_grad = tch::no_grad_guard();
    let beams = options.num_beams.max(1);
    if beams == 1 {
        return greedy(model, encoded, attention_mask, options.max_new_tokens);
    }
    let batch = encoded.size()[0] as usize;
    let device = encoded.device();
    let encoded = encoded.f_repeat_interleave_self_int(beams as i64, 0, None)?;
    let mask = attention_mask.f_repeat_interleave_self_int(beams as i64, 0, None)?;
    let mut cache = model.start_decoding(&encoded, &mask)?;
    let eos = model.config.eos_token_id;
    let keep = 2 * beams;
    let max_length = 1 + options.max_new_tokens;
    // Only the first beam is live at the start, so the first step does not pick the same token n times.
    let start = |b: usize| if b == 0 { 0.0 } else { -1e9 };
    let mut searches: Vec<Search> = (0..batch)
        .map(|_| Search {
            running: (0..beams).map(|b| (start(b), Vec::new())).collect(),
            finished: Vec::new(),
            can_improve: true,
        })
        .collect();
    let mut tokens =
        Tensor::f_full([(batch * beams) as i64, 1], model.config.decoder_start_token_id, (Kind::Int64, device))?;
    let mut cur_len: i64 = 1;
    loop {
        let log_probs =
            model.decode_step(&tokens, &mut cache)?.f_to_kind(Kind::Float)?.f_log_softmax(-1, Kind::Float)?;
        let vocab = log_probs.size()[1];
        let running_scores: Vec<f32> = searches.iter().flat_map(|s| s.running.iter().map(|r| r.0)).collect();
        let scores = Tensor::f_from_slice(&running_scores)?.f_to_device(device)?.f_view([-1, 1])?;
        let total = log_probs.f_add(&scores)?.f_view([batch as i64, -1])?;
        let (values, indices) = total.f_topk(keep as i64, -1, true, true)?;
        let values = Vec::<f32>::try_from(values.f_view(-1)?)?;
        let indices = Vec::<i64>::try_from(indices.f_view(-1)?)?;
        let mut rows = Vec::with_capacity(batch * beams);
        let mut next_tokens = Vec::with_capacity(batch * beams);
        let mut all_hit = true;
        for (b, search) in searches.iter_mut().enumerate() {
            let candidates: Vec<(f32, usize, i64, bool)> = (0..keep)
                .map(|k| {
                    let (score, index) = (values[b * keep + k], indices[b * keep + k]);
                    let token = index % vocab;
                    (score, (index / vocab) as usize, token, token == eos || cur_len + 1 >= max_length)
                })
                .collect();
            all_hit &= candidates.iter().all(|c| c.3);
            if search.can_improve {
                let penalty = (cur_len as f32).powf(options.length_penalty);
                for &(score, beam, token, hit) in candidates.iter().take(beams) {
                    if hit {
                        let mut hypothesis = search.running[beam].1.clone();
                        hypothesis.push(token);
                        search.finished.push((score / penalty, hypothesis));
                    }
                }
                search.finished.sort_by(|a, b| b.0.total_cmp(&a.0));
                search.finished.truncate(beams);
            }
            let mut continuing: Vec<(f32, usize, i64)> =
                candidates.iter().map(|&(s, beam, token, hit)| (if hit { s - 1e9 } else { s }, beam, token)).collect();
            continuing.sort_by(|a, b| b.0.total_cmp(&a.0));
            let previous = std::mem::take(&mut search.running);
            for &(score, beam, token) in continuing.iter().take(beams) {
                let mut sequence = previous[beam].1.clone();
                sequence.push(token);
                search.running.push((score, sequence));
                rows.push((b * beams + beam) as i64);
                next_tokens.push(token);
            }
        }
        cur_len += 1;
        for search in &mut searches {
            let best_running = search.running[0].0 / ((cur_len - 1) as f32).powf(options.length_penalty);
            let full = search.finished.len() == beams;
            let worst_finished = search.finished.last().map_or(-1e9, |f| f.0);
            search.can_improve &= !full || best_running > worst_finished;
        }
        if all_hit || searches.iter().all(|s| !s.can_improve) {
            break;
        }
        cache.select(&Tensor::f_from_slice(&rows)?.f_to_device(device)?)?;
        tokens = Tensor::f_from_slice(&next_tokens)?.f_to_device(device)?.f_view([-1, 1])?;
    }
    Ok(searches
        .into_iter()
        .map(|s| {
            let mut best = s.finished.into_iter().next().map(|f| f.1).unwrap_or_default();
            if best.last() == Some(&eos) {
                best.pop();
            }
            best
        })
        .collect())
}
