//! The training loop. Rust runs the step (forward, loss, backward, accumulation, clipping, update);
//! between steps it fires events to the hooks and applies the decisions they return.

use super::checkpoint::{self, write_dir_atomically, write_json, write_model};
use super::events::{Decision, Event, Metrics};
use super::metrics::{exact_match, token_f1, JsonlWriter};
use super::optim::AdamW;
use super::settings::Settings;
use super::state::{Best, TrainerState};
use crate::data::batch::{collate, epoch_order};
use crate::data::{ByteTokenizer, Dataset, Encoded};
use crate::model::{generate, T5Config, T5};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn::VarStore, Device, Tensor};
use tracing::info;

/// Where the run's policies live (Lua in the binary; a recorder in tests).
pub trait Hooks {
    /// Whether any handler listens to `event` (so the snapshot is built only when needed).
    fn wants(&self, event: Event) -> bool;
    fn fire(
        &mut self,
        event: Event,
        state: &TrainerState,
        metrics: Option<&Metrics>,
    ) -> Result<Decision>;
    /// The learning-rate multiplier for optimizer step `step` (0-based) of `max_steps`.
    fn lr_factor(&mut self, step: u64, max_steps: u64, warmup_steps: u64) -> Result<f64>;
}

pub struct TrainJob {
    pub settings: Settings,
    pub model: T5Config,
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
}

struct Trainer<'a> {
    job: &'a TrainJob,
    hooks: &'a mut dyn Hooks,
    vs: VarStore,
    model: T5,
    optimizer: AdamW,
    state: TrainerState,
    train: Vec<Encoded>,
    eval: Vec<Encoded>,
    log: JsonlWriter,
    lr_override: Option<f64>,
    loss_since_log: (f64, u64),
    started: Instant,
    last_eval_step: Option<u64>,
    last_saved_step: Option<u64>,
    last_metrics: Metrics,
    /// Seconds spent in optimizer steps and in evaluations, for the time-budget projection.
    step_seconds: f64,
    eval_seconds: f64,
    /// `max_steps` from the settings (or epochs), before any time-budget projection.
    planned_max_steps: u64,
}

pub fn fit(job: &TrainJob, hooks: &mut dyn Hooks) -> Result<FitResult> {
    std::fs::create_dir_all(&job.output_dir)
        .with_context(|| format!("creating {}", job.output_dir.display()))?;
    write_json(&job.output_dir.join("run.json"), &job.run_info)?;
    tch::manual_seed(job.settings.seed as i64);
    let vs = VarStore::new(job.device);
    let model = T5::new(&vs.root(), job.model.clone());
    let s = &job.settings;
    let optimizer = AdamW::new(&vs, s.adam_beta1, s.adam_beta2, s.adam_epsilon);
    let train = job.train.encode_all();
    let samples_per_step = s.batch_size * s.grad_accum;
    let steps_per_epoch = train.len().div_ceil(samples_per_step) as u64;
    let max_steps = s
        .max_steps
        .unwrap_or((s.epochs * steps_per_epoch as f64).ceil() as u64);
    info!(
        "model: T5 {} parameters, {} train / {} eval samples, {} steps ({} per epoch), device {:?}",
        optimizer.parameter_count(),
        train.len(),
        job.eval.as_ref().map_or(0, |e| e.len()),
        max_steps,
        steps_per_epoch,
        job.device
    );
    let mut trainer = Trainer {
        job,
        hooks,
        vs,
        model,
        optimizer,
        state: TrainerState {
            max_steps,
            batch_size: s.batch_size,
            grad_accum: s.grad_accum,
            weight_decay: s.weight_decay,
            ..TrainerState::default()
        },
        train,
        eval: job
            .eval
            .as_ref()
            .map(|e| e.encode_all())
            .unwrap_or_default(),
        log: JsonlWriter::create(&job.output_dir.join("metrics.jsonl"))?,
        lr_override: None,
        loss_since_log: (0.0, 0),
        started: Instant::now(),
        last_eval_step: None,
        last_saved_step: None,
        last_metrics: Metrics::new(),
        step_seconds: 0.0,
        eval_seconds: 0.0,
        planned_max_steps: max_steps,
    };
    trainer.run()?;
    Ok(FitResult {
        state: trainer.state,
        metrics: trainer.last_metrics,
    })
}

impl Trainer<'_> {
    fn run(&mut self) -> Result<()> {
        let decision = self.fire(Event::TrainBegin, None)?;
        self.apply(decision)?;
        let mut epoch = 0u64;
        while self.state.stop_reason.is_none() {
            self.fire(Event::EpochBegin, None)?;
            let order = epoch_order(self.train.len(), self.job.settings.seed, epoch);
            let mut cursor = 0;
            while cursor < order.len() && self.state.stop_reason.is_none() {
                let take =
                    (self.state.batch_size * self.state.grad_accum).min(order.len() - cursor);
                let started = Instant::now();
                self.step(&order[cursor..cursor + take])?;
                self.step_seconds += started.elapsed().as_secs_f64();
                cursor += take;
                self.state.epoch = epoch as f64 + cursor as f64 / order.len() as f64;
                self.after_step()?;
            }
            epoch += 1;
            let decision = self.fire(Event::EpochEnd, None)?;
            self.apply(decision)?;
        }
        self.finish()
    }

    /// One optimizer step over `indices`, in micro-batches of `batch_size`.
    fn step(&mut self, indices: &[usize]) -> Result<()> {
        let decision = self.fire(Event::StepBegin, None)?;
        self.apply(decision)?;
        let s = &self.job.settings;
        let lr = match self.lr_override {
            Some(lr) => lr,
            None => {
                s.learning_rate
                    * self.hooks.lr_factor(
                        self.state.global_step,
                        self.state.max_steps,
                        s.warmup_steps,
                    )?
            }
        };
        self.state.lr = lr;
        self.optimizer.zero_grad()?;
        let label_tokens: usize = indices.iter().map(|&i| self.train[i].target.len()).sum();
        let mut step_loss = 0.0;
        for micro in indices.chunks(self.state.batch_size) {
            let samples: Vec<&Encoded> = micro.iter().map(|&i| &self.train[i]).collect();
            let batch = collate(&samples, self.job.device);
            let logits = self.model.forward(
                &batch.input_ids,
                &batch.attention_mask,
                &self.model.shift_right(&batch.labels)?,
                true,
            )?;
            let loss = T5::loss_sum(&logits, &batch.labels)?.f_div_scalar(label_tokens as f64)?;
            loss.f_backward()?;
            step_loss += loss.f_double_value(&[])?;
            self.state.tokens_seen += (batch.source_tokens + batch.target_tokens) as u64;
            self.state.samples_seen += batch.samples as u64;
            self.fire(Event::SubstepEnd, None)?;
        }
        let grad_norm = self
            .optimizer
            .clip_grad_norm(self.job.settings.max_grad_norm)?;
        self.state.loss = Some(step_loss);
        self.state.grad_norm = Some(grad_norm);
        let decision = self.fire(Event::PreOptimizerStep, None)?;
        self.apply(decision)?;
        self.optimizer.step(lr, self.state.weight_decay)?;
        self.state.global_step += 1;
        self.loss_since_log.0 += step_loss;
        self.loss_since_log.1 += 1;
        Ok(())
    }

    fn after_step(&mut self) -> Result<()> {
        self.state.elapsed_seconds = self.started.elapsed().as_secs_f64();
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
        if let Some(budget) = s.max_seconds.filter(|&b| self.state.elapsed_seconds >= b) {
            self.stop(format!("reached max_seconds = {budget}"));
        } else if step >= self.state.max_steps {
            self.stop(format!("reached max_steps = {}", self.state.max_steps));
        }
        Ok(())
    }

    /// Under a time budget, shrinks `max_steps` to the steps that fit in the time left (at the
    /// measured cost of a step plus its share of evaluations), so that the schedule decays over
    /// the run that will actually happen instead of being cut off mid-way.
    fn project_max_steps(&mut self) {
        const WARMUP_MEASUREMENTS: u64 = 10;
        let Some(budget) = self.job.settings.max_seconds else {
            return;
        };
        let step = self.state.global_step;
        if step < WARMUP_MEASUREMENTS {
            return;
        }
        let per_step = (self.step_seconds + self.eval_seconds) / step as f64;
        let left = (budget - self.state.elapsed_seconds).max(0.0);
        let projected = step + (left / per_step).floor() as u64;
        self.state.max_steps = projected.clamp(step, self.planned_max_steps);
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
        if let Some(best) = self
            .state
            .best
            .clone()
            .filter(|_| self.job.settings.best.load_at_end)
        {
            let path = self.job.output_dir.join("best").join("model.safetensors");
            let _no_grad = tch::no_grad_guard();
            self.vs
                .read_safetensors(&path)
                .with_context(|| format!("loading the best model from {}", path.display()))?;
            info!(
                "loaded the best model: {} = {:.4} at step {}",
                best.metric, best.value, best.step
            );
            write_dir_atomically(&self.job.output_dir.join("final"), |dir| {
                write_model(dir, &self.vs, &self.model.config)
            })?;
        }
        self.log.write(&json!({"event": "train_end", "step": step, "reason": self.state.stop_reason, "best": self.state.best}))?;
        self.fire(Event::TrainEnd, None)?;
        Ok(())
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
        if let Some(lr) = decision.lr {
            info!("step {step}: learning rate set to {lr:e} by a policy");
            self.lr_override = Some(lr);
        }
        if let Some(wd) = decision
            .weight_decay
            .filter(|&wd| wd != self.state.weight_decay)
        {
            info!(
                "step {step}: weight decay {} -> {wd}",
                self.state.weight_decay
            );
            self.state.weight_decay = wd;
        }
        if let Some(b) = decision.batch_size.filter(|&b| b != self.state.batch_size) {
            info!("step {step}: batch size {} -> {b}", self.state.batch_size);
            self.state.batch_size = b;
        }
        if let Some(a) = decision.grad_accum.filter(|&a| a != self.state.grad_accum) {
            info!(
                "step {step}: gradient accumulation {} -> {a}",
                self.state.grad_accum
            );
            self.state.grad_accum = a;
        }
        if decision.save && self.last_saved_step != Some(step) && step > 0 {
            self.save()?;
        }
        if let Some(reason) = decision.stop {
            self.log
                .write(&json!({"event": "stop", "step": step, "reason": reason}))?;
            self.stop(reason);
        }
        Ok(())
    }

    fn log_train(&mut self) -> Result<()> {
        let (sum, n) = std::mem::take(&mut self.loss_since_log);
        let loss = sum / n.max(1) as f64;
        self.state.train_loss = Some(loss);
        let elapsed = self.started.elapsed().as_secs_f64();
        let samples_per_second = self.state.samples_seen as f64 / elapsed;
        let st = &self.state;
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
        self.log.write(&json!({
            "event": "log", "step": st.global_step, "epoch": st.epoch, "loss": loss, "learning_rate": st.lr,
            "grad_norm": st.grad_norm, "batch_size": st.batch_size, "grad_accum": st.grad_accum,
            "samples_per_second": samples_per_second, "elapsed_seconds": elapsed,
        }))?;
        let decision = self.fire(Event::Log, None)?;
        self.apply(decision)
    }

    fn evaluate(&mut self) -> Result<Decision> {
        let mut decision = self.fire(Event::EvalBegin, None)?;
        let started = Instant::now();
        let eval_data = self
            .job
            .eval
            .as_ref()
            .context("evaluation asked for, but the trainer has no eval set")?;
        let metrics = evaluate(
            &self.model,
            &self.eval,
            eval_data,
            &self.job.settings,
            self.job.device,
        )?;
        let step = self.state.global_step;
        info!(
            "eval at step {step}: {} ({:.1}s)",
            metrics
                .iter()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect::<Vec<_>>()
                .join(" | "),
            started.elapsed().as_secs_f64()
        );
        let mut record = json!({"event": "eval", "step": step, "epoch": self.state.epoch});
        for (k, v) in &metrics {
            record[k] = json!(v);
        }
        self.log.write(&record)?;
        self.track_best(&metrics)?;
        self.last_eval_step = Some(step);
        self.last_metrics = metrics.clone();
        self.eval_seconds += started.elapsed().as_secs_f64();
        decision.merge(self.fire(Event::EvalEnd, Some(&metrics))?);
        Ok(decision)
    }

    fn track_best(&mut self, metrics: &Metrics) -> Result<()> {
        let best = &self.job.settings.best;
        let Some(&value) = metrics.get(&best.metric) else {
            anyhow::bail!(
                "best.metric is {:?} but evaluation reports only: {}",
                best.metric,
                metrics.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let improved = match &self.state.best {
            None => true,
            Some(b) if best.greater_is_better => value > b.value,
            Some(b) => value < b.value,
        };
        if improved {
            self.state.best = Some(Best {
                metric: best.metric.clone(),
                value,
                step: self.state.global_step,
            });
            write_dir_atomically(&self.job.output_dir.join("best"), |dir| {
                write_model(dir, &self.vs, &self.model.config)?;
                write_json(&dir.join("trainer_state.json"), &self.state)
            })?;
        }
        Ok(())
    }

    fn save(&mut self) -> Result<()> {
        let step = self.state.global_step;
        let dir = checkpoint::checkpoint_dir(&self.job.output_dir, step);
        write_dir_atomically(&dir, |tmp| {
            write_model(tmp, &self.vs, &self.model.config)?;
            Tensor::write_safetensors(&self.optimizer.state(), tmp.join("optimizer.safetensors"))?;
            write_json(&tmp.join("trainer_state.json"), &self.state)
        })?;
        if let Some(limit) = self.job.settings.save_total_limit {
            checkpoint::rotate(
                &self.job.output_dir,
                limit,
                self.state.best.as_ref().map(|b| b.step),
            )?;
        }
        self.last_saved_step = Some(step);
        self.log
            .write(&json!({"event": "save", "step": step, "path": dir}))?;
        let decision = self.fire(Event::Save, None)?;
        self.apply(Decision {
            save: false,
            ..decision
        })
    }

    fn fire(&mut self, event: Event, metrics: Option<&Metrics>) -> Result<Decision> {
        if !self.hooks.wants(event) {
            return Ok(Decision::default());
        }
        self.hooks.fire(event, &self.state, metrics)
    }
}

/// Eval loss (token-weighted mean over the eval set) and generation metrics of greedy answers.
pub fn evaluate(
    model: &T5,
    encoded: &[Encoded],
    data: &Dataset,
    settings: &Settings,
    device: Device,
) -> Result<Metrics> {
    let _no_grad = tch::no_grad_guard();
    let max_new_tokens = settings
        .max_new_tokens
        .unwrap_or(data.options.max_target_len) as i64;
    let tok = ByteTokenizer;
    let (mut loss_sum, mut tokens, mut exact, mut f1) = (0.0, 0usize, 0usize, 0.0);
    let refs: Vec<&Encoded> = encoded.iter().collect();
    for (chunk_index, chunk) in refs.chunks(settings.eval_batch_size).enumerate() {
        let batch = collate(chunk, device);
        let encoded = model.encode(&batch.input_ids, &batch.attention_mask, false)?;
        let logits = model.decode(
            &model.shift_right(&batch.labels)?,
            &encoded,
            &batch.attention_mask,
            false,
        )?;
        loss_sum += T5::loss_sum(&logits, &batch.labels)?.f_double_value(&[])?;
        tokens += batch.target_tokens;
        let generated = generate::greedy(model, &encoded, &batch.attention_mask, max_new_tokens)?;
        for (i, ids) in generated.iter().enumerate() {
            let prediction = tok.decode(ids);
            let answer = &data.samples[chunk_index * settings.eval_batch_size + i].answer;
            exact += exact_match(&prediction, answer) as usize;
            f1 += token_f1(&prediction, answer);
        }
    }
    let n = encoded.len().max(1) as f64;
    Ok(Metrics::from([
        ("eval_loss".to_string(), loss_sum / tokens.max(1) as f64),
        ("eval_exact_match".to_string(), exact as f64 / n),
        ("eval_f1".to_string(), f1 / n),
    ]))
}
