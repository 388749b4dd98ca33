//! The order in which training visits its samples, and the data report shown before training.

use super::settings::Settings;
use super::trainer::TrainJob;
use crate::data::batch::{epoch_order, group_by_length};
use crate::data::report::{padding_waste, TruncationReport};
use crate::data::Encoded;
use serde_json::json;
use tracing::info;

/// The order in which an epoch visits the training samples (seeded; length-grouped if asked).
pub fn sample_order(train: &[Encoded], settings: &Settings, epoch: u64) -> Vec<usize> {
    let order = epoch_order(train.len(), settings.seed, epoch);
    if !settings.group_by_length {
        return order;
    }
    let lengths: Vec<usize> = train.iter().map(|e| e.source.len()).collect();
    group_by_length(order, &lengths, settings.batch_size * settings.grad_accum * LENGTH_GROUP_WINDOW)
}

/// Optimizer steps' worth of samples sorted together by length (HF uses 50 batches).
const LENGTH_GROUP_WINDOW: usize = 50;

/// The data report shown before training and kept in run.json: lengths, truncation, padding.
pub fn describe_data(job: &TrainJob, train: &[Encoded]) -> anyhow::Result<serde_json::Value> {
    let report = TruncationReport::of(&job.train)?;
    info!("train data: {report}");
    let s = &job.settings;
    let waste = |grouped: bool| {
        let order = sample_order(train, &Settings { group_by_length: grouped, ..s.clone() }, 0);
        let batches: Vec<&[usize]> = order.chunks(s.batch_size).collect();
        padding_waste(train, &batches)
    };
    let (grouped, shuffled) = (waste(true), waste(false));
    info!(
        "padding: {:.1}% of source tokens with length grouping, {:.1}% without (this run: {})",
        100.0 * grouped,
        100.0 * shuffled,
        if s.group_by_length { "grouped" } else { "not grouped" }
    );
    Ok(json!({
        "train": report,
        "eval": job.eval.as_ref().map(TruncationReport::of).transpose()?,
        "skipped_lines": {"train": job.train.skipped_lines, "eval": job.eval.as_ref().map(|e| e.skipped_lines)},
        "padding_waste": {"grouped": grouped, "shuffled": shuffled},
    }))
}
