//! The training loop. Rust runs the step (forward, loss, backward, accumulation, clipping, update);
//! between steps it fires events to the hooks and applies the decisions they return.

use super::checkpoint::{self, write_dir_atomically, write_json, write_model};
use super::evaluate::evaluate;
use super::events::{Decision, Event, Metrics};
use super::interrupt;
use super::oom::{self, FaultInjector, StepError};
use super::optim::{named_parameters, AdamW};
use super::progress::Progress;
use super::runlog::RunLog;
use super::sampling::{describe_data, sample_order};
use super::settings::Settings;
use super::state::{Best, TrainerState};
use crate::data::batch::{collate, micro_batches};
use crate::data::prefetch::Prefetcher;
use crate::data::Tokenizer;
use crate::data::{Dataset, Encoded, QaSample};
use crate::dist::{self, GradientBuckets, World};
use crate::model::{weights, ModelSpec, T5};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::{nn::VarStore, Device};
use tracing::{debug, info, warn};

/// Where the run's policies live (Lua in the binary; a recorder in tests).
pub trait Hooks {
    /// Whether any handler listens to `event` (so the snapshot is built only when needed).
    fn wants(&self, event: Event) -> bool;
    /// `payload`: the metrics of `eval_end`, what is known of an `oom`; `None` for other events.
    fn fire(&mut self, event: Event, state: &TrainerState, payload: Option<&serde_json::Value>) -> Result<Decision>;
    /// The learning-rate multiplier for optimizer step `step` (0-based) of `max_steps`.
    fn lr_factor(&mut self, step: u64, max_steps: u64, warmup_steps: u64) -> Result<f64>;
    /// Every callback's own state (patience counters, best values), saved in each checkpoint.
    fn state_dict(&mut self) -> Result<serde_json::Value>;
    fn load_state_dict(&mut self, state: &serde_json::Value) -> Result<()>;
    /// Metrics written by the user (named without the `eval_` prefix) over the eval set's
    /// generated answers and references.
    fn metrics(&mut self, _predictions: &[String], _references: &[String]) -> Result<Metrics> {
        Ok(Metrics::new())
    }
    /// The training samples of `epoch` after the script's augmentation (drawn from `seed` and
    /// the epoch, so a resumed run draws the same), or `None` without augmentation.
    fn augment(&mut self, _seed: u64, _epoch: u64, _samples: &[QaSample]) -> Result<Option<Vec<QaSample>>> {
        Ok(None)
    }
}

pub struct TrainJob {
    pub settings: Settings,
    pub model: ModelSpec,
    pub train: Dataset,
    pub eval: Option<Dataset>,
    pub device: Device,
    pub output_dir: PathBuf,
    /// Resolved settings and versions, written to run.json.
    pub run_info: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct FitResult {
    pub state: TrainerState,
    pub metrics: Metrics,
    /// The records of metrics.jsonl (log, eval, save, stop, ...), in order.
    pub history: Vec<serde_json::Value>,
    /// The directory with the weights the run ended with (`final/` or the last checkpoint).
    pub weights: PathBuf,
}

struct Trainer<'a> {
    job: &'a TrainJob,
    hooks: &'a mut dyn Hooks,
    /// The processes training together; rank 0 decides and writes, the others follow.
    world: &'static World,
    vs: VarStore,
    model: T5,
    optimizer: AdamW,
    gradients: GradientBuckets,
    state: TrainerState,
    /// This epoch's training samples (augmented, when the script augments) and their encoding,
    /// which the prefetch thread shares; replaced (copy on write) when prompts are cut.
    samples: Arc<Vec<QaSample>>,
    train: Arc<Vec<Encoded>>,
    prefetcher: Prefetcher,
    /// `(step_seconds, data_wait_seconds)` at the last log line, for the data wait per interval.
    log_window: (f64, f64),
    /// The samples of the step after the current one, which the prefetcher collates meanwhile.
    next_step: Vec<usize>,
    eval: Vec<Encoded>,
    log: RunLog,
    /// When training started, moved back by the time a resumed run had already spent.
    started: Instant,
    last_eval_step: Option<u64>,
    last_saved_step: Option<u64>,
    last_metrics: Metrics,
    nan_streak: u64,
    /// Out-of-memory recoveries in a row within the current step.
    oom_retries: u32,
    injector: FaultInjector,
    progress: Progress,
    /// Whether the last handler fired raised an error (a bug in a callback, not in the engine).
    callback_failed: bool,
    /// Raised by Ctrl-C or SIGTERM; checked between steps.
    interrupted: Arc<AtomicBool>,
}

fn describe(probes: &[(usize, bool)]) -> String {
    probes
        .iter()
        .map(|(b, fit)| format!("{b} {}", if *fit { "fits" } else { "does not" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a rank's share of a step added up to (summed over ranks afterwards).
#[derive(Default)]
struct StepTotals {
    loss: f64,
    samples: f64,
    tokens: f64,
}

/// Out-of-memory recoveries allowed within one step before the run gives up.
const MAX_OOM_RETRIES: u32 = 64;

pub fn fit(job: &TrainJob, hooks: &mut dyn Hooks) -> Result<FitResult> {
    std::fs::create_dir_all(&job.output_dir).with_context(|| format!("creating {}", job.output_dir.display()))?;
    let s = &job.settings;
    let world = dist::world()?;
    tch::manual_seed(s.seed as i64);
    let vs = VarStore::new(job.device);
    let model = T5::new(&vs.root(), job.model.config.clone());
    if let Some(dir) = &job.model.weights {
        let unused = weights::load_into(&vs, dir)?;
        info!(
            "loaded weights from {}{}",
            dir.display(),
            if unused.is_empty() {
                String::new()
            } else {
                format!(" ({} unused: {})", unused.len(), unused.join(", "))
            }
        );
    }
    let parameters = parameters_by_name(&vs);
    world.broadcast_tensors(&parameters)?;
    let optimizer = AdamW::new(&vs, s.adam_beta1, s.adam_beta2, s.adam_epsilon);
    let train = job.train.encode_all()?;
    let mut run_info = job.run_info.clone();
    run_info["data"] = describe_data(job, &train)?;
    run_info["world_size"] = json!(world.size);
    if world.is_main() {
        write_json(&job.output_dir.join("run.json"), &run_info)?;
    }
    let steps_per_epoch = train.len().div_ceil(s.batch_size * s.grad_accum * world.size) as u64;
    let max_steps = s.max_steps.unwrap_or((s.epochs * steps_per_epoch as f64).ceil() as u64);
    info!(
        "model: T5 with {} parameters; {} train / {} eval samples; {max_steps} steps ({steps_per_epoch} per epoch); {:?}{}",
        optimizer.parameter_count(),
        train.len(),
        job.eval.as_ref().map_or(0, |e| e.len()),
        job.device,
        match world.size {
            1 => String::new(),
            n => format!(
                "; {n} processes, batch {} per process (effective batch {})",
                s.batch_size,
                s.batch_size * s.grad_accum * n
            ),
        }
    );
    let mut trainer = Trainer {
        job,
        hooks,
        world,
        vs,
        model,
        optimizer,
        gradients: GradientBuckets::new(parameters),
        state: TrainerState {
            max_steps,
            planned_max_steps: max_steps,
            batch_size: s.batch_size,
            grad_accum: s.grad_accum,
            eval_batch_size: s.eval_batch_size,
            weight_decay: s.weight_decay,
            world_size: world.size,
            ..TrainerState::default()
        },
        samples: Arc::clone(&job.train.samples),
        train: Arc::new(train),
        prefetcher: Prefetcher::new()?,
        log_window: (0.0, 0.0),
        next_step: Vec::new(),
        eval: job.eval.as_ref().map(|e| e.encode_all()).transpose()?.unwrap_or_default(),
        log: match world.is_main() {
            true => {
                RunLog::create(&job.output_dir, s.report_to_tensorboard, &serde_json::to_string_pretty(&run_info)?)?
            }
            false => RunLog::in_memory(),
        },
        started: Instant::now(),
        last_eval_step: None,
        last_saved_step: None,
        last_metrics: Metrics::new(),
        nan_streak: 0,
        oom_retries: 0,
        injector: FaultInjector::from_env(world.rank)?,
        callback_failed: false,
        progress: Progress::disabled(),
        interrupted: interrupt::install()?,
    };
    let resumed_from = match &s.resume {
        Some(which) => trainer.resume(which)?,
        None => None,
    };
    // Readers of metrics.jsonl drop the records after this step that an earlier run appended:
    // all of them on a fresh start, those of the stretch lost to a crash on a resume.
    trainer
        .record(&json!({"event": "train_begin", "step": trainer.state.global_step, "resumed_from": resumed_from}))?;
    if world.is_main() {
        trainer.progress = Progress::start(trainer.state.global_step, trainer.state.max_steps);
    }
    let _cap = match s.max_memory {
        Some(budget) if job.device == Device::Cpu => {
            info!("max_memory: allocations beyond {:.2} GiB more are refused", budget as f64 / (1u64 << 30) as f64);
            Some(oom::MemoryCap::new(budget)?)
        }
        _ => None,
    };
    if let Err(error) = trainer.run() {
        trainer.save_after_callback_error();
        return Err(error);
    }
    // The result names rank 0's files (final weights, checkpoints): they are written now.
    world.barrier()?;
    let weights = match trainer.state.best.is_some() && s.best.load_at_end {
        true => job.output_dir.join("final"),
        false => checkpoint::checkpoint_dir(&job.output_dir, trainer.state.global_step),
    };
    Ok(FitResult { state: trainer.state, metrics: trainer.last_metrics, history: trainer.log.history, weights })
}

fn parameters_by_name(vs: &VarStore) -> Vec<tch::Tensor> {
    named_parameters(vs).into_iter().map(|(_, tensor)| tensor).collect()
}

/// Cuts every prompt of `encoded` to `len` tokens (EOS kept); returns how many were cut and how
/// many of `samples`' answers that cut out of their context.
fn cap_prompts(encoded: &mut [Encoded], samples: &[QaSample], len: usize, tokenizer: &Tokenizer) -> (usize, usize) {
    let (mut cut, mut answers_lost) = (0, 0);
    for (encoded, sample) in encoded.iter_mut().zip(samples) {
        if encoded.source.len() <= len {
            continue;
        }
        let had_answer = tokenizer.decode(&encoded.source).contains(&sample.answer);
        let eos = *encoded.source.last().expect("prompts end with EOS");
        encoded.source.truncate(len - 1);
        encoded.source.push(eos);
        cut += 1;
        answers_lost += (had_answer && !tokenizer.decode(&encoded.source).contains(&sample.answer)) as usize;
    }
    (cut, answers_lost)
}

impl Trainer<'_> {
    fn run(&mut self) -> Result<()> {
        let decision = self.fire(Event::TrainBegin, None)?;
        self.apply(decision)?;
        self.check_limits();
        while self.state.stop_reason.is_none() {
            let epoch = self.state.epoch_index;
            if self.state.epoch_cursor == 0 {
                let decision = self.fire(Event::EpochBegin, None)?;
                self.apply(decision)?;
            }
            self.augment_epoch(epoch)?;
            let order = sample_order(&self.train, &self.job.settings, epoch);
            while self.state.epoch_cursor < order.len() && self.state.stop_reason.is_none() {
                let cursor = self.state.epoch_cursor;
                let per_step = self.state.batch_size * self.state.grad_accum * self.world.size;
                let take = per_step.min(order.len() - cursor);
                let after = (cursor + take..order.len()).take(take);
                self.next_step = after.map(|position| order[position]).collect();
                let started = Instant::now();
                let before = self.state.clone();
                if let Err(error) = self.step(&order[cursor..cursor + take]) {
                    if self.callback_failed {
                        // Handlers run before the update or after it is whole: the weights are
                        // the last completed step's, and so must be the state saved with them.
                        self.state = before;
                    }
                    return Err(error);
                }
                self.state.step_seconds += started.elapsed().as_secs_f64();
                self.state.epoch_cursor += take;
                self.state.epoch = epoch as f64 + self.state.epoch_cursor as f64 / order.len() as f64;
                self.after_step()?;
                self.progress.update(&self.state);
                if self.world.any(interrupt::requested(&self.interrupted))? {
                    return self.stop_on_signal();
                }
            }
            if self.state.epoch_cursor >= order.len() {
                self.state.epoch_index += 1;
                self.state.epoch_cursor = 0;
                let mut decision = Decision::default();
                if self.job.settings.eval_each_epoch && self.last_eval_step != Some(self.state.global_step) {
                    decision.merge(self.evaluate()?);
                }
                if self.job.settings.save_each_epoch && self.last_saved_step != Some(self.state.global_step) {
                    self.save()?;
                }
                decision.merge(self.fire(Event::EpochEnd, None)?);
                self.apply(decision)?;
            }
        }
        self.finish()
    }

    /// Restores model, optimizer, trainer state and callback state from a checkpoint. With
    /// `latest`, a damaged newest checkpoint (a crash mid-save, a truncated copy) is reported and
    /// the one before it is used.
    fn resume(&mut self, which: &str) -> Result<Option<PathBuf>> {
        let (dir, loaded) = match which {
            "latest" => {
                let steps = checkpoint::checkpoint_steps(&self.job.output_dir)?;
                if steps.is_empty() {
                    info!(
                        "resume = \"latest\": no checkpoint in {} yet; starting fresh",
                        self.job.output_dir.display()
                    );
                    return Ok(None);
                }
                let mut refused = Vec::new();
                let found = steps.iter().rev().find_map(|&step| {
                    let dir = checkpoint::checkpoint_dir(&self.job.output_dir, step);
                    match checkpoint::load(&dir, &self.vs, &self.model.config, &mut self.optimizer) {
                        Ok(loaded) => Some((dir, loaded)),
                        Err(error) => {
                            warn!("cannot resume from {}: {error:#}; trying the one before", dir.display());
                            refused.push(format!("{error:#}"));
                            None
                        }
                    }
                });
                found.with_context(|| {
                    format!("resume = \"latest\": every checkpoint is damaged:\n  {}", refused.join("\n  "))
                })?
            }
            path => {
                let dir = PathBuf::from(path);
                let loaded = checkpoint::load(&dir, &self.vs, &self.model.config, &mut self.optimizer)?;
                (dir, loaded)
            }
        };
        self.hooks.load_state_dict(&loaded.callbacks)?;
        let mut state = loaded.trainer;
        self.adapt_to_world_size(&mut state);
        state.stop_reason = None;
        state.planned_max_steps = self.state.planned_max_steps;
        state.max_steps = self.state.planned_max_steps;
        self.started = Instant::now() - Duration::from_secs_f64(state.elapsed_seconds);
        self.last_saved_step = Some(state.global_step);
        info!("resumed from {} at step {} (epoch {:.2})", dir.display(), state.global_step, state.epoch);
        self.log_window = (state.step_seconds, state.data_wait_seconds);
        self.state = state;
        if let Some(len) = self.state.max_source_len {
            self.cap_sources(len)?;
        }
        Ok(Some(dir))
    }

    /// A checkpoint saved by a different number of processes: the gradient accumulation is scaled
    /// so that the effective batch (batch × accumulation × processes) stays what it was.
    fn adapt_to_world_size(&self, state: &mut TrainerState) {
        let (saved, now) = (state.world_size, self.world.size);
        if saved == now {
            return;
        }
        let effective = state.batch_size * state.grad_accum * saved;
        let per_accumulation = state.batch_size * now;
        if effective % per_accumulation == 0 {
            let accum = effective / per_accumulation;
            info!(
                "the checkpoint was trained by {saved} processes, this run has {now}: gradient accumulation {} -> {accum} keeps the effective batch of {effective}",
                state.grad_accum
            );
            state.grad_accum = accum;
        } else {
            warn!(
                "the checkpoint was trained by {saved} processes, this run has {now}: the effective batch changes from {effective} to {} (no whole accumulation keeps it)",
                state.batch_size * state.grad_accum * now
            );
        }
        state.world_size = now;
    }

    /// One optimizer step over `indices` (all ranks' samples), in micro-batches of `batch_size`.
    fn step(&mut self, indices: &[usize]) -> Result<()> {
        let decision = self.fire(Event::StepBegin, None)?;
        self.apply(decision)?;
        let s = &self.job.settings;
        // Dropout masks depend on (seed, step, rank) only, so a resumed run draws what a continuous
        // one would, and ranks draw different masks.
        let seed = s.seed.wrapping_add(self.state.global_step).wrapping_add((self.world.rank as u64) << 32);
        tch::manual_seed(seed as i64);
        let lr = match self.state.lr_override {
            Some(lr) => lr,
            None => {
                s.learning_rate * self.hooks.lr_factor(self.state.global_step, self.state.max_steps, s.warmup_steps)?
            }
        };
        let lr = self.world.agree(lr)?;
        self.state.lr = lr;
        let totals = loop {
            let attempt = self.accumulate_gradients(indices);
            if let Err(StepError::Other(error)) = attempt {
                return Err(error);
            }
            // An out-of-memory error on any rank makes every rank retry with the same new batch.
            let oom_anywhere = self.world.any(attempt.is_err())?;
            match attempt {
                Ok(totals) if !oom_anywhere => break totals,
                Err(StepError::OutOfMemory(message)) => self.recover_from_oom(&message, indices)?,
                _ => self.recover_from_oom("out of memory on another rank", indices)?,
            }
        };
        self.oom_retries = 0;
        self.gradients.sum_across(self.world)?;
        let [step_loss, samples, tokens] = self.world.sum([totals.loss, totals.samples, totals.tokens])?;
        self.state.samples_seen += samples as u64;
        self.state.tokens_seen += tokens as u64;
        let grad_norm = self.optimizer.clip_grad_norm(self.job.settings.max_grad_norm)?;
        self.state.loss = Some(step_loss);
        self.state.grad_norm = Some(grad_norm);
        if !step_loss.is_finite() || !grad_norm.is_finite() {
            return self.skip_non_finite_step(step_loss, grad_norm);
        }
        self.nan_streak = 0;
        let decision = self.fire(Event::PreOptimizerStep, None)?;
        self.apply(decision)?;
        self.update(lr)?;
        self.state.global_step += 1;
        self.state.log_loss_sum += step_loss;
        self.state.log_loss_steps += 1;
        Ok(())
    }

    /// Forward and backward over this rank's share of the step's samples in micro-batches of
    /// `batch_size`, gradients accumulating. Each micro-batch's loss is divided by the label tokens
    /// of the whole step (all ranks'), so how the step is split, across micro-batches or ranks,
    /// does not change its gradient once the ranks' gradients are summed.
    fn accumulate_gradients(&mut self, indices: &[usize]) -> Result<StepTotals, StepError> {
        self.optimizer.zero_grad()?;
        let label_tokens: usize = indices.iter().map(|&i| self.train[i].target.len()).sum();
        let mut totals = StepTotals::default();
        let waiting = Instant::now();
        let (batch_size, budget) = (self.state.batch_size, self.job.settings.max_batch_tokens);
        let (rank, size) = (self.world.rank, self.world.size);
        let mine = dist::shard(indices, rank, size);
        let batches =
            self.prefetcher.take(&self.train, &micro_batches(mine, &self.train, batch_size, budget), self.job.device);
        if !self.next_step.is_empty() {
            let next = dist::shard(&self.next_step, rank, size);
            self.prefetcher.ahead(&self.train, micro_batches(next, &self.train, batch_size, budget));
        }
        self.state.data_wait_seconds += waiting.elapsed().as_secs_f64();
        for batch in batches {
            let decoder_input = self.model.shift_right(&batch.labels)?;
            let logits = self.model.forward(&batch.input_ids, &batch.attention_mask, &decoder_input, true)?;
            self.injector.train(batch.samples, batch.longest_source)?;
            let loss = T5::loss_sum(&logits, &batch.labels)?.f_div_scalar(label_tokens as f64)?;
            loss.f_backward()?;
            totals.loss += loss.f_double_value(&[])?;
            totals.samples += batch.samples as f64;
            totals.tokens += (batch.source_tokens + batch.target_tokens) as f64;
            // Ranks may run different numbers of micro-batches: this event's decisions stay local.
            self.fire_local(Event::SubstepEnd, None)?;
        }
        Ok(totals)
    }

    /// After an out-of-memory error the failed attempt's tensors are already dropped; this
    /// discards its partial gradients, asks the `oom` handlers for a smaller batch (by default:
    /// halve the batch, double the accumulation, so the effective batch is kept) and applies it.
    /// The same samples are then retried; optimizer, schedule and data position are untouched.
    fn recover_from_oom(&mut self, message: &str, indices: &[usize]) -> Result<()> {
        self.optimizer.zero_grad()?;
        self.oom_retries += 1;
        let (batch, accum, step) = (self.state.batch_size, self.state.grad_accum, self.state.global_step);
        let longest = indices.iter().map(|&i| self.train[i].source.len()).max().unwrap_or(0);
        let info = json!({
            "phase": "train", "message": message, "batch_size": batch, "grad_accum": accum,
            "max_source_len": longest, "resident_bytes": oom::resident_bytes(), "retries": self.oom_retries,
        });
        let decision = self.fire(Event::Oom, Some(&info))?;
        if let Some(reason) = decision.stop {
            return self.give_up_after_oom(message, &reason);
        }
        let (new_batch, new_accum) = match (decision.batch_size, decision.grad_accum) {
            (None, None) if decision.max_source_len.is_some() => (batch, accum),
            (None, None) if batch == 1 => return self.give_up_after_oom(message, "even a batch of 1 does not fit"),
            (None, None) => (batch.div_ceil(2), accum * 2),
            (b, a) => (b.unwrap_or(batch), a.unwrap_or(accum)),
        };
        if self.oom_retries > MAX_OOM_RETRIES {
            let reason = format!("{} recoveries in a row at the same step", self.oom_retries);
            return self.give_up_after_oom(message, &reason);
        }
        warn!("out of memory at step {step} with batch {batch}×{accum}: retrying the same samples with {new_batch}×{new_accum} ({message})");
        self.record(&json!({"event": "oom", "step": step, "from": [batch, accum], "to": [new_batch, new_accum], "message": message}))?;
        self.apply(Decision { batch_size: Some(new_batch), grad_accum: Some(new_accum), ..decision })
    }

    /// With an `augment` function, re-draws this epoch's training samples and encodes them (with
    /// the prompt cap an out-of-memory policy may have set).
    fn augment_epoch(&mut self, epoch: u64) -> Result<()> {
        let Some(samples) = self.hooks.augment(self.job.settings.seed, epoch, &self.job.train.samples)? else {
            return Ok(());
        };
        let dataset = self.job.train.with_samples(samples);
        let mut encoded = dataset.encode_all()?;
        if let Some(len) = self.state.max_source_len {
            cap_prompts(&mut encoded, &dataset.samples, len, &dataset.options.tokenizer);
        }
        self.train = Arc::new(encoded);
        self.samples = dataset.samples;
        Ok(())
    }

    /// Cuts every training prompt to `len` tokens (EOS kept) from now on, reporting how many
    /// answers that cuts out of their context.
    fn cap_sources(&mut self, len: usize) -> Result<()> {
        let (cut, answers_lost) = cap_prompts(
            Arc::<Vec<Encoded>>::make_mut(&mut self.train),
            &self.samples,
            len,
            &self.job.train.options.tokenizer,
        );
        let step = self.state.global_step;
        warn!(
            "step {step}: prompts capped at {len} tokens: {cut} cut, {answers_lost} answers no longer in their context"
        );
        self.record(
            &json!({"event": "max_source_len", "step": step, "to": len, "cut": cut, "answers_lost": answers_lost}),
        )?;
        self.state.max_source_len = Some(len);
        Ok(())
    }

    /// The largest micro-batch (up to `limit` and the effective batch) whose forward and backward
    /// fit, found on the longest training samples by doubling and then bisecting; the batch becomes
    /// the largest divisor of the effective batch that fits, so training stays the same.
    fn find_batch_size(&mut self, limit: usize) -> Result<()> {
        let effective = self.state.batch_size * self.state.grad_accum;
        let limit = limit.min(effective).min(self.train.len()).max(1);
        let mut longest: Vec<usize> = (0..self.train.len()).collect();
        longest.sort_by_key(|&i| std::cmp::Reverse(self.train[i].source.len() + self.train[i].target.len()));
        let mut probes = Vec::new();
        let mut fits = |trainer: &mut Self, batch: usize| -> Result<bool> {
            let fit = trainer.probe(&longest[..batch])?;
            let fit = trainer.world.all(fit)?;
            probes.push((batch, fit));
            Ok(fit)
        };
        let (mut lo, mut hi) = (0, limit + 1); // lo fits (0: nothing yet), hi does not
        let mut batch = self.state.batch_size.min(limit);
        if fits(self, batch)? {
            lo = batch;
            while batch * 2 <= limit && fits(self, batch * 2)? {
                batch *= 2;
                lo = batch;
            }
            hi = hi.min(batch * 2);
        } else {
            hi = batch;
            while batch > 1 {
                batch /= 2;
                if fits(self, batch)? {
                    lo = batch;
                    break;
                }
                hi = batch;
            }
        }
        while lo > 0 && hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(self, mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return self.give_up_after_oom("a batch of 1 does not fit", "the batch search found nothing that fits");
        }
        let chosen = (1..=lo).rev().find(|b| effective % b == 0).unwrap_or(1);
        let accum = effective / chosen;
        info!("batch search: {} -> the largest that fits is {lo}; training with {chosen}×{accum}", describe(&probes));
        self.record(&json!({"event": "batch_search", "step": self.state.global_step, "probes": probes, "largest": lo, "to": [chosen, accum]}))?;
        self.state.batch_size = chosen;
        self.state.grad_accum = accum;
        Ok(())
    }

    /// Whether forward and backward over these samples fit in memory; leaves no gradients behind.
    fn probe(&mut self, indices: &[usize]) -> Result<bool> {
        let samples: Vec<&Encoded> = indices.iter().map(|&i| &self.train[i]).collect();
        let attempt = (|| -> Result<(), StepError> {
            let batch = collate(&samples, self.job.device);
            let decoder_input = self.model.shift_right(&batch.labels)?;
            let logits = self.model.forward(&batch.input_ids, &batch.attention_mask, &decoder_input, true)?;
            self.injector.probe(batch.samples)?;
            T5::loss_sum(&logits, &batch.labels)?.f_backward()?;
            Ok(())
        })();
        self.optimizer.zero_grad()?;
        match attempt {
            Ok(()) => Ok(true),
            Err(StepError::OutOfMemory(_)) => Ok(false),
            Err(StepError::Other(error)) => Err(error),
        }
    }

    /// Saves the last completed step, then stops with advice: nothing smaller is left to try.
    fn give_up_after_oom(&mut self, message: &str, reason: &str) -> Result<()> {
        if self.state.global_step > 0 {
            self.save()?;
        }
        anyhow::bail!(
            "out of memory at step {} ({message}): {reason}. The last completed step is saved in {}; \
             to fit, try precision = \"bf16\" on a GPU, a smaller model, or a shorter max_source_len",
            self.state.global_step,
            self.job.output_dir.display()
        )
    }

    /// The optimizer update. An out-of-memory error part-way through leaves each parameter updated
    /// or untouched, so the update is resumed where it stopped (a few times at most: no batch size
    /// can make the update itself smaller).
    fn update(&mut self, lr: f64) -> Result<()> {
        const RETRIES: u32 = 3;
        let step = self.state.global_step + 1;
        let mut fail_at = self.injector.optimizer(step);
        let mut retries = 0;
        loop {
            match self.optimizer.step(lr, self.state.weight_decay, fail_at.take()).map_err(StepError::from) {
                Ok(()) => return Ok(()),
                Err(StepError::OutOfMemory(message)) if retries < RETRIES => {
                    retries += 1;
                    warn!("out of memory in the optimizer update of step {step}; resuming it ({message})");
                    self.record(&json!({"event": "oom", "phase": "optimizer", "step": step, "message": message}))?;
                }
                Err(error) => anyhow::bail!(
                    "step {step}: the optimizer update failed part-way ({error}); the weights in memory are \
                     inconsistent, so nothing is saved: the last checkpoint in {} is intact",
                    self.job.output_dir.display()
                ),
            }
        }
    }

    /// A non-finite loss or gradient: the update is skipped (the step still counts, so the schedule
    /// and the data move on), `nan` fires, and too many in a row stop the run after a save.
    fn skip_non_finite_step(&mut self, loss: f64, grad_norm: f64) -> Result<()> {
        self.nan_streak += 1;
        self.state.global_step += 1;
        warn!("step {}: loss {loss}, grad norm {grad_norm}: update skipped", self.state.global_step);
        let record = json!({"event": "nan", "step": self.state.global_step, "loss": loss.to_string(), "grad_norm": grad_norm.to_string()});
        self.record(&record)?;
        let decision = self.fire(Event::Nan, None)?;
        self.apply(decision)?;
        let limit = self.job.settings.max_nan_steps;
        if self.nan_streak >= limit {
            self.save()?;
            self.stop(format!(
                "{limit} steps in a row had a non-finite loss; lower the learning rate or check the data"
            ));
        }
        Ok(())
    }

    fn after_step(&mut self) -> Result<()> {
        self.state.elapsed_seconds = self.started.elapsed().as_secs_f64();
        // Rank 0's clocks rule the time budget, so that every rank stops at the same step.
        let st = &self.state;
        (self.state.elapsed_seconds, self.state.step_seconds, self.state.eval_seconds) =
            self.world.agree((st.elapsed_seconds, st.step_seconds, st.eval_seconds))?;
        let s = &self.job.settings;
        let step = self.state.global_step;
        self.project_max_steps();
        let mut decision = self.fire(Event::StepEnd, None)?;
        if step % s.log_every == 0 {
            self.log_train()?;
        }
        if decision.eval || (s.eval_every > 0 && step % s.eval_every == 0) {
            decision.merge(self.evaluate()?);
        }
        if decision.save || (s.save_every > 0 && step % s.save_every == 0) {
            self.save()?;
        }
        self.apply(decision)?;
        self.check_limits();
        Ok(())
    }

    /// Stops the run once it reached `max_steps` or spent `max_seconds`.
    fn check_limits(&mut self) {
        if let Some(budget) = self.job.settings.max_seconds.filter(|&b| self.state.elapsed_seconds >= b) {
            self.stop(format!("reached max_seconds = {budget}"));
        } else if self.state.global_step >= self.state.max_steps {
            self.stop(format!("reached max_steps = {}", self.state.max_steps));
        }
    }

    /// Under a time budget, shrinks `max_steps` to the steps that fit in the time left (at the
    /// measured cost of a step plus its share of evaluations), so that the schedule decays over
    /// the run that will actually happen instead of being cut off mid-way.
    fn project_max_steps(&mut self) {
        const WARMUP_MEASUREMENTS: u64 = 10;
        let Some(budget) = self.job.settings.max_seconds else { return };
        let step = self.state.global_step;
        if step < WARMUP_MEASUREMENTS {
            return;
        }
        let per_step = (self.state.step_seconds + self.state.eval_seconds) / step as f64;
        let left = (budget - self.state.elapsed_seconds).max(0.0);
        let projected = step + (left / per_step).floor() as u64;
        self.state.max_steps = projected.clamp(step, self.state.planned_max_steps);
    }

    fn finish(&mut self) -> Result<()> {
        let step = self.state.global_step;
        if !self.eval.is_empty() && self.last_eval_step != Some(step) {
            let decision = self.evaluate()?;
            self.apply(decision)?;
        }
        if self.last_saved_step != Some(step) {
            self.save()?;
        }
        if let Some(best) = self.state.best.clone().filter(|_| self.job.settings.best.load_at_end) {
            if self.world.is_main() {
                let path = self.job.output_dir.join("best").join("model.safetensors");
                let _no_grad = tch::no_grad_guard();
                self.vs
                    .read_safetensors(&path)
                    .with_context(|| format!("loading the best model from {}", path.display()))?;
                info!("loaded the best model: {} = {:.4} at step {}", best.metric, best.value, best.step);
                write_dir_atomically(&self.job.output_dir.join("final"), |dir| {
                    write_model(dir, &self.vs, &self.model.config, &self.job.model.tokenizer)
                })?;
            }
            self.world.broadcast_tensors(&parameters_by_name(&self.vs))?;
        }
        self.write_state()?;
        let record =
            json!({"event": "train_end", "step": step, "reason": self.state.stop_reason, "best": self.state.best});
        self.record(&record)?;
        self.fire(Event::TrainEnd, None)?;
        Ok(())
    }

    /// Ctrl-C or SIGTERM: the step in progress has finished; save it and say how to go on.
    fn stop_on_signal(&mut self) -> Result<()> {
        let step = self.state.global_step;
        self.stop(format!("interrupted by a signal at step {step}"));
        self.record(&json!({"event": "stop", "step": step, "reason": "interrupted by a signal"}))?;
        if self.last_saved_step != Some(step) {
            self.save()?;
        }
        self.write_state()?;
        anyhow::bail!(
            "interrupted at step {step}; saved {}. To continue, run the same command with --resume \
             (a second Ctrl-C exits at once, without saving)",
            checkpoint::checkpoint_dir(&self.job.output_dir, step).display()
        )
    }

    /// trainer_state.json (rank 0).
    fn write_state(&self) -> Result<()> {
        match self.world.is_main() {
            true => write_json(&self.job.output_dir.join("trainer_state.json"), &self.state),
            false => Ok(()),
        }
    }

    fn stop(&mut self, reason: String) {
        if self.state.stop_reason.is_none() {
            info!("stopping at step {}: {reason}", self.state.global_step);
            self.state.stop_reason = Some(reason);
        }
    }

    /// Applies validated decisions between steps, logging each change.
    fn apply(&mut self, decision: Decision) -> Result<()> {
        if decision.is_empty() {
            return Ok(());
        }
        let step = self.state.global_step;
        if let Some(limit) = decision.find_batch_size {
            self.find_batch_size(limit)?;
        }
        if let Some(len) = decision.max_source_len {
            self.cap_sources(len)?;
        }
        if let Some(lr) = decision.lr {
            info!("step {step}: learning rate set to {lr:e} by a policy");
            self.state.lr_override = Some(lr);
        }
        if let Some(wd) = decision.weight_decay.filter(|&wd| wd != self.state.weight_decay) {
            info!("step {step}: weight decay {} -> {wd}", self.state.weight_decay);
            self.state.weight_decay = wd;
        }
        if let Some(b) = decision.batch_size.filter(|&b| b != self.state.batch_size) {
            info!("step {step}: batch size {} -> {b}", self.state.batch_size);
            self.state.batch_size = b;
        }
        if let Some(a) = decision.grad_accum.filter(|&a| a != self.state.grad_accum) {
            info!("step {step}: gradient accumulation {} -> {a}", self.state.grad_accum);
            self.state.grad_accum = a;
        }
        if decision.save && self.last_saved_step != Some(step) && step > 0 {
            self.save()?;
        }
        self.delete_checkpoints(&decision.delete_checkpoints)?;
        if let Some(reason) = decision.stop {
            self.record(&json!({"event": "stop", "step": step, "reason": reason}))?;
            self.stop(reason);
        }
        Ok(())
    }

    /// Deletes checkpoints a policy gave up (e.g. outside the top k), except the best and the
    /// newest, which resume needs.
    fn delete_checkpoints(&mut self, steps: &[u64]) -> Result<()> {
        if !self.world.is_main() {
            return Ok(());
        }
        let saved = checkpoint::checkpoint_steps(&self.job.output_dir)?;
        let newest = saved.last().copied();
        for &step in steps {
            let dir = checkpoint::checkpoint_dir(&self.job.output_dir, step);
            if Some(step) == self.state.best.as_ref().map(|b| b.step) || Some(step) == newest {
                warn!("not deleting {}: the best and the newest checkpoints are kept", dir.display());
            } else if saved.contains(&step) {
                std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))?;
                self.record(
                    &json!({"event": "delete_checkpoint", "step": self.state.global_step, "checkpoint": step}),
                )?;
            }
        }
        Ok(())
    }

    fn log_train(&mut self) -> Result<()> {
        let sum = std::mem::take(&mut self.state.log_loss_sum);
        let steps = std::mem::take(&mut self.state.log_loss_steps);
        let loss = sum / steps.max(1) as f64;
        self.state.train_loss = Some(loss);
        let samples_per_second = self.state.samples_seen as f64 / self.state.step_seconds.max(1e-9);
        let (step_seconds, waited) = (self.state.step_seconds, self.state.data_wait_seconds);
        let (window_seconds, window_wait) = std::mem::replace(&mut self.log_window, (step_seconds, waited));
        let data_wait_percent = 100.0 * (waited - window_wait) / (step_seconds - window_seconds).max(1e-9);
        let tokens_per_second = self.state.tokens_seen as f64 / self.state.step_seconds.max(1e-9);
        let st = &self.state;
        if !self.progress.is_drawn() {
            info!(
            "step {}/{} | epoch {:.2} | loss {loss:.4} | lr {:.2e} | grad norm {:.3} | {samples_per_second:.1} samples/s | batch {}×{}",
            st.global_step,
            st.max_steps,
            st.epoch,
            st.lr,
            st.grad_norm.unwrap_or(f64::NAN),
            st.batch_size,
            st.grad_accum
        );
        }
        self.record(&json!({
            "event": "log", "step": st.global_step, "epoch": st.epoch, "loss": loss, "learning_rate": st.lr,
            "grad_norm": st.grad_norm, "batch_size": st.batch_size, "grad_accum": st.grad_accum,
            "samples_per_second": samples_per_second, "tokens_per_second": tokens_per_second,
            "elapsed_seconds": st.elapsed_seconds, "data_wait_percent": data_wait_percent, "resident_mib": oom::resident_bytes().map(|b| b as f64 / 1048576.0),
        }))?;
        let decision = self.fire(Event::Log, None)?;
        self.apply(decision)
    }

    /// Rank 0 evaluates; every rank receives its metrics, tracks the best and fires `eval_end`.
    fn evaluate(&mut self) -> Result<Decision> {
        let mut decision = self.fire(Event::EvalBegin, None)?;
        let started = Instant::now();
        let metrics = match self.world.is_main() {
            true => Some(self.evaluate_here(&mut decision)?),
            false => None,
        };
        let (metrics, mut decision) = self.world.agree((metrics, decision))?;
        let metrics = metrics.expect("rank 0 evaluated");
        let step = self.state.global_step;
        let mut record = json!({"event": "eval", "step": step, "epoch": self.state.epoch});
        for (k, v) in &metrics {
            record[k] = json!(v);
        }
        self.record(&record)?;
        self.track_best(&metrics)?;
        self.last_eval_step = Some(step);
        self.last_metrics = metrics.clone();
        self.state.eval_seconds += started.elapsed().as_secs_f64();
        decision.merge(self.fire(Event::EvalEnd, Some(&json!(metrics)))?);
        Ok(decision)
    }

    /// Generates and scores the eval set on this process, halving the eval batch on out-of-memory
    /// errors (whose `oom` decisions are merged into `decision`).
    fn evaluate_here(&mut self, decision: &mut Decision) -> Result<Metrics> {
        let started = Instant::now();
        let data = self.job.eval.as_ref().context("evaluation asked for, but the trainer has no eval set")?;
        let evaluation = loop {
            let batch = self.state.eval_batch_size;
            let result =
                evaluate(&self.model, &self.eval, data, &self.job.settings, batch, self.job.device, &self.injector);
            match result {
                Ok(evaluation) => break evaluation,
                Err(StepError::Other(error)) => return Err(error),
                Err(StepError::OutOfMemory(message)) if batch > 1 => {
                    // Only the eval batch shrinks: the training batch is a different budget.
                    let smaller = batch.div_ceil(2);
                    warn!("out of memory during evaluation with batch {batch}: retrying with {smaller} ({message})");
                    let info = json!({"phase": "eval", "message": message, "eval_batch_size": batch, "resident_bytes": oom::resident_bytes()});
                    let step = self.state.global_step;
                    self.record(&json!({"event": "oom", "phase": "eval", "step": step, "from": batch, "to": smaller, "message": message}))?;
                    self.state.eval_batch_size = smaller;
                    let informed = self.fire_local(Event::Oom, Some(&info))?;
                    decision.stop = decision.stop.take().or(informed.stop);
                }
                Err(StepError::OutOfMemory(message)) => {
                    anyhow::bail!("out of memory evaluating even one sample at a time: {message}")
                }
            }
        };
        let mut metrics = evaluation.metrics;
        let references: Vec<String> = data.samples.iter().map(|s| s.answer.clone()).collect();
        for (name, value) in self.hooks.metrics(&evaluation.predictions, &references)? {
            metrics.insert(format!("eval_{name}"), value);
        }
        let step = self.state.global_step;
        let shown: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        info!("eval at step {step}: {} ({:.1}s)", shown.join(" | "), started.elapsed().as_secs_f64());
        for (question, prediction, reference) in &evaluation.examples {
            info!("  {question:?} -> {prediction:?} (expected {reference:?})");
        }
        Ok(metrics)
    }

    fn track_best(&mut self, metrics: &Metrics) -> Result<()> {
        let best = &self.job.settings.best;
        let Some(&value) = metrics.get(&best.metric) else {
            let known: Vec<&str> = metrics.keys().map(String::as_str).collect();
            anyhow::bail!("best.metric is {:?} but evaluation reports only: {}", best.metric, known.join(", "));
        };
        let improved = match &self.state.best {
            None => true,
            Some(b) if best.greater_is_better => value > b.value,
            Some(b) => value < b.value,
        };
        if improved {
            self.state.best = Some(Best { metric: best.metric.clone(), value, step: self.state.global_step });
            if !self.world.is_main() {
                return Ok(());
            }
            write_dir_atomically(&self.job.output_dir.join("best"), |dir| {
                write_model(dir, &self.vs, &self.model.config, &self.job.model.tokenizer)?;
                write_json(&dir.join("trainer_state.json"), &self.state)
            })?;
        }
        Ok(())
    }

    fn save(&mut self) -> Result<()> {
        self.write_checkpoint()?;
        let decision = self.fire(Event::Save, None)?;
        self.apply(Decision { save: false, ..decision })
    }

    /// Writes `checkpoint-{step}` and rotates old ones, without firing `save`.
    fn write_checkpoint(&mut self) -> Result<()> {
        let step = self.state.global_step;
        let dir = checkpoint::checkpoint_dir(&self.job.output_dir, step);
        let callbacks = self.hooks.state_dict()?;
        if self.world.is_main() {
            debug!("saving {}", dir.display());
            write_dir_atomically(&dir, |tmp| {
                checkpoint::write_checkpoint(
                    tmp,
                    &self.vs,
                    &self.model.config,
                    &self.job.model.tokenizer,
                    &self.optimizer,
                    &self.state,
                    &callbacks,
                )
            })?;
            if let Some(limit) = self.job.settings.save_total_limit {
                checkpoint::rotate(&self.job.output_dir, limit, self.state.best.as_ref().map(|b| b.step))?;
            }
        }
        self.last_saved_step = Some(step);
        self.record(&json!({"event": "save", "step": step, "path": dir}))
    }

    /// Appends a record to metrics.jsonl and to the run's history.
    fn record(&mut self, record: &serde_json::Value) -> Result<()> {
        self.log.record(record)
    }

    /// Fires `event` on every rank and returns rank 0's decision, which every rank applies.
    fn fire(&mut self, event: Event, payload: Option<&serde_json::Value>) -> Result<Decision> {
        if !self.hooks.wants(event) {
            return Ok(Decision::default());
        }
        let decision = self.fire_local(event, payload)?;
        self.world.agree(decision)
    }

    /// Fires `event` on this rank only, at a point the ranks may not reach together.
    fn fire_local(&mut self, event: Event, payload: Option<&serde_json::Value>) -> Result<Decision> {
        if !self.hooks.wants(event) {
            return Ok(Decision::default());
        }
        let decision = self.hooks.fire(event, &self.state, payload);
        self.callback_failed = decision.is_err();
        decision
    }

    /// A handler failed: keep the last completed step (unless it is saved already) so that the
    /// run resumes from there once the script is fixed.
    fn save_after_callback_error(&mut self) {
        let step = self.state.global_step;
        if !self.callback_failed || step == 0 || self.last_saved_step == Some(step) {
            return;
        }
        let dir = checkpoint::checkpoint_dir(&self.job.output_dir, step);
        match self.write_checkpoint() {
            Ok(()) => warn!(
                "a handler failed after step {step}; saved {}. Once the script is fixed, run the same command \
                 with --resume",
                dir.display()
            ),
            Err(error) => warn!("a handler failed after step {step}, and saving it failed too: {error:#}"),
        }
    }
}
