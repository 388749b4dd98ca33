//! What the data looks like to the model, reported before training: token lengths, what the caps
//! cut off (above all answers no longer present in the truncated context, a silent cause of
//! underfitting), and how much of a batch is padding.

use super::{Dataset, Encoded};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LengthStats {
    pub p50: usize,
    pub p90: usize,
    pub p99: usize,
    pub max: usize,
}

impl LengthStats {
    fn of(mut lengths: Vec<usize>) -> LengthStats {
        lengths.sort_unstable();
        let at = |q: f64| lengths.get(((lengths.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        LengthStats { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: lengths.last().copied().unwrap_or(0) }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TruncationReport {
    pub samples: usize,
    /// Token lengths before truncation, EOS included.
    pub source_tokens: LengthStats,
    pub target_tokens: LengthStats,
    pub max_source_len: usize,
    pub max_target_len: usize,
    pub sources_truncated: usize,
    pub targets_truncated: usize,
    /// Answers found in the full prompt but not in the part the model sees.
    pub answers_cut_from_context: usize,
}

impl TruncationReport {
    pub fn of(data: &Dataset) -> anyhow::Result<TruncationReport> {
        let tok = &data.options.tokenizer;
        let (max_source, max_target) = (data.options.max_source_len, data.options.max_target_len);
        let (mut sources, mut targets) = (Vec::new(), Vec::new());
        let (mut sources_truncated, mut targets_truncated, mut answers_cut) = (0, 0, 0);
        for sample in data.samples.iter() {
            let prompt = data.prompt(sample);
            let source = tok.encode(&prompt, usize::MAX)?;
            let target = tok.encode(&sample.answer, usize::MAX)?;
            sources.push(source.ids.len());
            targets.push(target.ids.len());
            if source.ids.len() > max_source {
                sources_truncated += 1;
                let kept = tok.decode(&source.ids[..max_source - 1]);
                if prompt.contains(&sample.answer) && !kept.contains(&sample.answer) {
                    answers_cut += 1;
                }
            }
            targets_truncated += (target.ids.len() > max_target) as usize;
        }
        Ok(TruncationReport {
            samples: data.len(),
            source_tokens: LengthStats::of(sources),
            target_tokens: LengthStats::of(targets),
            max_source_len: max_source,
            max_target_len: max_target,
            sources_truncated,
            targets_truncated,
            answers_cut_from_context: answers_cut,
        })
    }
}

impl fmt::Display for TruncationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: usize| 100.0 * n as f64 / self.samples.max(1) as f64;
        let s = &self.source_tokens;
        let t = &self.target_tokens;
        writeln!(f, "{} samples; token lengths (p50 / p90 / p99 / max):", self.samples)?;
        writeln!(f, "  sources {} / {} / {} / {} (cap {})", s.p50, s.p90, s.p99, s.max, self.max_source_len)?;
        writeln!(f, "  targets {} / {} / {} / {} (cap {})", t.p50, t.p90, t.p99, t.max, self.max_target_len)?;
        writeln!(
            f,
            "  truncated: {} sources ({:.1}%), {} targets ({:.1}%)",
            self.sources_truncated,
            pct(self.sources_truncated),
            self.targets_truncated,
            pct(self.targets_truncated)
        )?;
        write!(
            f,
            "  answers cut out of their context by truncation: {} ({:.1}%)",
            self.answers_cut_from_context,
            pct(self.answers_cut_from_context)
        )?;
        if self.answers_cut_from_context > 0 {
            write!(f, " -- the model cannot learn these; raise max_source_len")?;
        }
        Ok(())
    }
}

/// Share of the source tokens in `batches` that are padding.
pub fn padding_waste(samples: &[Encoded], batches: &[&[usize]]) -> f64 {
    let (mut padded, mut real) = (0usize, 0usize);
    for batch in batches {
        let longest = batch.iter().map(|&i| samples[i].source.len()).max().unwrap_or(0);
        padded += longest * batch.len();
        real += batch.iter().map(|&i| samples[i].source.len()).sum::<usize>();
    }
    if padded == 0 {
        0.0
    } else {
        (padded - real) as f64 / padded as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{EncodeOptions, QaSample};

    #[test]
    fn counts_truncation_and_answers_cut_from_context() {
        let sample = |context: &str, answer: &str| QaSample {
            question: "q".into(),
            context: context.into(),
            answer: answer.into(),
        };
        let options = EncodeOptions {
            max_source_len: 20,
            max_target_len: 4,
            template: "{question} {context}".into(),
            ..EncodeOptions::default()
        };
        // Prompts are "q " + context; 19 bytes fit before EOS.
        let data = Dataset::new(
            vec![
                sample("short ANS", "ANS"),                    // fits
                sample("ANS then a long tail of text", "ANS"), // truncated, answer kept
                sample("a long head of text then ANS", "ANS"), // truncated, answer cut
                sample("short", "LONGER"),                     // target truncated
            ],
            options,
        );
        let report = TruncationReport::of(&data).unwrap();
        assert_eq!((report.sources_truncated, report.answers_cut_from_context, report.targets_truncated), (2, 1, 1));
        assert_eq!(report.source_tokens.max, "q a long head of text then ANS".len() + 1);
        assert!(report.to_string().contains("answers cut out of their context by truncation: 1 (25.0%)"));
    }

    #[test]
    fn padding_waste_is_the_padded_share() {
        let e = |n: usize| Encoded { source: vec![5; n], target: vec![1] };
        let samples = vec![e(2), e(4), e(4), e(4)];
        assert_eq!(padding_waste(&samples, &[&[0, 1]]), 0.25);
        assert_eq!(padding_waste(&samples, &[&[1, 2, 3]]), 0.0);
    }
}
