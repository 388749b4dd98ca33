//! Batches: seeded sample order per epoch and dynamic padding to each batch's longest sample.

use super::tokenizer::PAD;
use super::Encoded;
use crate::model::t5::IGNORE_INDEX;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

/// Padded tensors of one (micro-)batch.
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    /// Answer ids, `IGNORE_INDEX` where padded.
    pub labels: Tensor,
    pub samples: usize,
    pub longest_source: usize,
    pub source_tokens: usize,
    pub target_tokens: usize,
}

impl Batch {
    pub fn to_device(self, device: Device) -> Batch {
        Batch {
            input_ids: self.input_ids.to_device(device),
            attention_mask: self.attention_mask.to_device(device),
            labels: self.labels.to_device(device),
            ..self
        }
    }
}

/// The order in which an epoch visits the training samples: a seeded shuffle, the same for the
/// same (seed, epoch), so a resumed run sees the samples a continuous one would.
pub fn epoch_order(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    order
}

/// HF's length-grouped sampling: the shuffled `order` is cut into windows of `window` samples,
/// each sorted longest first, so that the batches taken from it hold samples of similar length
/// (less padding) while the order stays random across windows.
pub fn group_by_length(mut order: Vec<usize>, source_lengths: &[usize], window: usize) -> Vec<usize> {
    for chunk in order.chunks_mut(window.max(1)) {
        chunk.sort_by_key(|&i| std::cmp::Reverse(source_lengths[i]));
    }
    order
}

/// Cuts a step's samples into micro-batches of at most `batch_size` samples and, with a token
/// budget, at most `max_tokens` padded prompt tokens (samples × longest prompt); a sample longer
/// than the budget goes alone.
pub fn micro_batches(
    indices: &[usize],
    samples: &[Encoded],
    batch_size: usize,
    max_tokens: Option<usize>,
) -> Vec<Vec<usize>> {
    let Some(budget) = max_tokens else {
        return indices.chunks(batch_size).map(<[usize]>::to_vec).collect();
    };
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut longest = 0;
    for &i in indices {
        let len = samples[i].source.len();
        let fits = |batch: &Vec<usize>| batch.len() < batch_size && (batch.len() + 1) * longest.max(len) <= budget;
        match batches.last_mut() {
            Some(batch) if fits(batch) => {
                batch.push(i);
                longest = longest.max(len);
            }
            _ => {
                batches.push(vec![i]);
                longest = len;
            }
        }
    }
    batches
}

pub fn collate(samples: &[&Encoded], device: Device) -> Batch {
    let source_len = samples.iter().map(|s| s.source.len()).max().unwrap_or(1);
    let target_len = samples.iter().map(|s| s.target.len()).max().unwrap_or(1);
    let mut input_ids = Vec::with_capacity(samples.len() * source_len);
    let mut mask = Vec::with_capacity(samples.len() * source_len);
    let mut labels = Vec::with_capacity(samples.len() * target_len);
    for s in samples {
        input_ids.extend_from_slice(&s.source);
        input_ids.extend(std::iter::repeat(PAD).take(source_len - s.source.len()));
        mask.extend(std::iter::repeat(1i64).take(s.source.len()));
        mask.extend(std::iter::repeat(0i64).take(source_len - s.source.len()));
        labels.extend_from_slice(&s.target);
        labels.extend(std::iter::repeat(IGNORE_INDEX).take(target_len - s.target.len()));
    }
    let shape = |len: usize| [samples.len() as i64, len as i64];
    Batch {
        input_ids: Tensor::from_slice(&input_ids).view(shape(source_len)).to_device(device),
        attention_mask: Tensor::from_slice(&mask).view(shape(source_len)).to_device(device),
        labels: Tensor::from_slice(&labels).view(shape(target_len)).to_device(device),
        samples: samples.len(),
        longest_source: source_len,
        source_tokens: samples.iter().map(|s| s.source.len()).sum(),
        target_tokens: samples.iter().map(|s| s.target.len()).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_budget_splits_long_prompts_into_smaller_micro_batches() {
        let samples: Vec<Encoded> =
            [10, 10, 10, 40, 10, 100].iter().map(|&n| Encoded { source: vec![5; n], target: vec![1] }).collect();
        let all: Vec<usize> = (0..samples.len()).collect();
        assert_eq!(micro_batches(&all, &samples, 4, None), [vec![0, 1, 2, 3], vec![4, 5]]);
        // 3 × 10 fit in 40 tokens; the 40-token prompt fills a batch alone, and so does the one over budget.
        assert_eq!(micro_batches(&all, &samples, 4, Some(40)), [vec![0, 1, 2], vec![3], vec![4], vec![5]]);
        assert_eq!(micro_batches(&all, &samples, 2, Some(1000)), [vec![0, 1], vec![2, 3], vec![4, 5]]);
    }

    #[test]
    fn pads_to_longest_and_masks_labels() {
        let a = Encoded { source: vec![10, 11, 1], target: vec![20, 1] };
        let b = Encoded { source: vec![12, 1], target: vec![21, 22, 1] };
        let batch = collate(&[&a, &b], Device::Cpu);
        assert_eq!(Vec::<i64>::try_from(batch.input_ids.view(-1)).unwrap(), [10, 11, 1, 12, 1, 0]);
        assert_eq!(Vec::<i64>::try_from(batch.attention_mask.view(-1)).unwrap(), [1, 1, 1, 1, 1, 0]);
        assert_eq!(Vec::<i64>::try_from(batch.labels.view(-1)).unwrap(), [20, 1, IGNORE_INDEX, 21, 22, 1]);
        assert_eq!(batch.target_tokens, 5);
    }

    #[test]
    fn length_grouping_sorts_within_windows_only() {
        let lengths = [5, 1, 9, 3, 7, 2];
        let grouped = group_by_length(vec![0, 1, 2, 3, 4, 5], &lengths, 3);
        assert_eq!(grouped, [2, 0, 1, 4, 3, 5]);
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let order = epoch_order(100, 3, 1);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(100, 3, 1));
        assert_ne!(order, epoch_order(100, 3, 2));
    }
}
