//! The data pipeline: QA samples, byte-level encoding, seeded splits and padded batches.

pub mod batch;
pub mod prefetch;
pub mod qa;
pub mod report;
pub mod tokenizer;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use qa::{load_jsonl, samples_from_value, write_jsonl, FieldNames, OnBadLine, QaSample};
pub use tokenizer::{ByteTokenizer, Tokenizer};

/// How samples become token ids.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub max_source_len: usize,
    pub max_target_len: usize,
    /// Prompt with `{question}` and `{context}` placeholders.
    pub template: String,
    /// The model's tokenizer (the trainer sets it from the model).
    pub tokenizer: Tokenizer,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            max_source_len: 512,
            max_target_len: 64,
            template: "question: {question} context: {context}".into(),
            tokenizer: Tokenizer::Bytes,
        }
    }
}

/// One sample as token ids: the prompt and the answer, each EOS-terminated.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub source: Vec<i64>,
    pub target: Vec<i64>,
}

/// A named set of samples with the options that encode them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub samples: Arc<Vec<QaSample>>,
    pub options: EncodeOptions,
    /// Bad lines skipped while loading (`on_bad_line = "skip"`), reported in run.json.
    pub skipped_lines: usize,
}

impl Dataset {
    pub fn new(samples: Vec<QaSample>, options: EncodeOptions) -> Self {
        Dataset { samples: Arc::new(samples), options, skipped_lines: 0 }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn prompt(&self, sample: &QaSample) -> String {
        self.options.template.replace("{question}", &sample.question).replace("{context}", &sample.context)
    }

    pub fn encode_all(&self) -> anyhow::Result<Vec<Encoded>> {
        let tok = &self.options.tokenizer;
        self.samples
            .iter()
            .map(|s| {
                Ok(Encoded {
                    source: tok.encode(&self.prompt(s), self.options.max_source_len)?.ids,
                    target: tok.encode(&s.answer, self.options.max_target_len)?.ids,
                })
            })
            .collect()
    }

    /// The same options over other samples (augmented, mapped, a fold).
    pub fn with_samples(&self, samples: Vec<QaSample>) -> Dataset {
        Dataset::new(samples, self.options.clone())
    }

    /// Sample indices grouped by context (the questions about one document), groups in a seeded
    /// random order: splits move whole groups, so no document is on both sides.
    fn context_groups(&self, seed: u64) -> Vec<Vec<usize>> {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in self.samples.iter().enumerate() {
            groups.entry(s.context.as_str()).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        groups
    }

    fn pick(&self, indices: impl IntoIterator<Item = usize>) -> Dataset {
        self.with_samples(indices.into_iter().map(|i| self.samples[i].clone()).collect())
    }

    /// Splits into (train, eval) with about `eval_fraction` of the samples in eval, grouped by context.
    pub fn split(&self, eval_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let eval_target = (self.len() as f64 * eval_fraction).round() as usize;
        let (mut train, mut eval) = (Vec::new(), Vec::new());
        for group in self.context_groups(seed) {
            let side = if eval.len() < eval_target { &mut eval } else { &mut train };
            side.extend(group);
        }
        (self.pick(train), self.pick(eval))
    }

    /// K (train, eval) pairs whose eval sides partition the samples in folds of near-equal size,
    /// grouped by context. Each group goes to the fold with the fewest samples so far.
    pub fn kfold(&self, k: usize, seed: u64) -> Vec<(Dataset, Dataset)> {
        let mut folds: Vec<Vec<usize>> = vec![Vec::new(); k];
        for group in self.context_groups(seed) {
            let smallest = (0..k).min_by_key(|&f| folds[f].len()).expect("k >= 1");
            folds[smallest].extend(group);
        }
        (0..k)
            .map(|held_out| {
                let train =
                    folds.iter().enumerate().filter(|(f, _)| *f != held_out).flat_map(|(_, fold)| fold.iter().copied());
                (self.pick(train), self.pick(folds[held_out].iter().copied()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(context: &str, q: usize) -> QaSample {
        QaSample { question: format!("q{q}"), context: context.into(), answer: "a".into() }
    }

    #[test]
    fn split_keeps_documents_whole_and_is_seeded() {
        let samples: Vec<QaSample> =
            (0..50).flat_map(|doc| (0..4).map(move |q| sample(&format!("doc{doc}"), q))).collect();
        let data = Dataset::new(samples, EncodeOptions::default());
        let (train, eval) = data.split(0.1, 7);
        assert_eq!(train.len() + eval.len(), 200);
        assert_eq!(eval.len(), 20);
        for s in eval.samples.iter() {
            assert!(train.samples.iter().all(|t| t.context != s.context), "{} on both sides", s.context);
        }
        let (_, again) = data.split(0.1, 7);
        assert_eq!(again.samples, eval.samples);
        let (_, other) = data.split(0.1, 8);
        assert_ne!(other.samples, eval.samples);
    }

    #[test]
    fn kfold_partitions_documents_into_near_equal_folds() {
        let samples: Vec<QaSample> =
            (0..30).flat_map(|doc| (0..1 + doc % 4).map(move |q| sample(&format!("doc{doc}"), q))).collect();
        let data = Dataset::new(samples, EncodeOptions::default());
        let folds = data.kfold(3, 5);
        assert_eq!(folds.len(), 3);
        let mut held_out: Vec<String> = Vec::new();
        for (train, eval) in &folds {
            assert_eq!(train.len() + eval.len(), data.len());
            assert!((eval.len() as f64 - data.len() as f64 / 3.0).abs() <= 4.0, "fold of {} samples", eval.len());
            for s in eval.samples.iter() {
                assert!(train.samples.iter().all(|t| t.context != s.context), "{} on both sides", s.context);
                held_out.push(format!("{}/{}", s.context, s.question));
            }
        }
        held_out.sort();
        held_out.dedup();
        assert_eq!(held_out.len(), data.len(), "every sample is held out exactly once");
    }
}
