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
