//! `ft.trainer{...}`: a run's settings, data, model and policies; `run:on(event, fn)` and
//! `run:fit()`. Lua handlers see plain snapshots and answer with decision tables.

use super::data::{sample_from_lua, sample_table, LuaDataset};
use super::model::LuaModel;
use super::rng::LuaRng;
use super::{lua_error_text, RunOptions};
use crate::data::{Dataset, QaSample};
use crate::model::ModelSpec;
use crate::train::settings::{canonical_key, Value as SettingValue};
use crate::train::{fit, Decision, Event, Hooks, Settings, TrainJob, TrainerState};
use anyhow::anyhow;
use mlua::{Function, Lua, LuaSerdeExt, Table, UserData, UserDataMethods, Value};
use std::collections::BTreeMap;

/// Keys of the trainer table that are not settings.
const STRUCTURE_KEYS: &[&str] = &["model", "train", "eval", "schedule", "callbacks", "metrics", "augment"];

struct Handler {
    event: Event,
    function: Function,
    /// `self` for callback-table methods.
    receiver: Option<Table>,
    /// Where the handler came from, for logs and error messages.
    source: String,
}

pub struct LuaTrainer {
    values: BTreeMap<String, SettingValue>,
    model: LuaModel,
    train: LuaDataset,
    eval: Option<LuaDataset>,
    schedule: Option<Function>,
    /// `function(sample, rng) -> sample`, applied to every training sample at each epoch's start.
    augment: Option<Function>,
    handlers: Vec<Handler>,
    /// Metrics written in Lua: name -> function(predictions, references) -> number.
    metrics: Vec<(String, Function)>,
}

pub fn create(lua: &Lua, spec: Table) -> mlua::Result<LuaTrainer> {
    let mut values = BTreeMap::new();
    for pair in spec.pairs::<String, Value>() {
        let (key, value) = pair?;
        if STRUCTURE_KEYS.contains(&key.as_str()) {
            continue;
        }
        if key == "best" {
            let Value::Table(best) = value else {
                return Err(mlua::Error::runtime(
                    "ft.trainer: `best` must be a table {metric = ..., greater_is_better = ..., load_at_end = ...}",
                ));
            };
            for pair in best.pairs::<String, Value>() {
                let (k, v) = pair?;
                insert_setting(&mut values, format!("best.{k}"), v)?;
            }
            continue;
        }
        insert_setting(&mut values, key, value)?;
    }
    let options = lua.app_data_ref::<RunOptions>().expect("run options installed").clone();
    for (key, value) in &options.overrides {
        values.insert(key.clone(), value.clone());
    }
    let output_dir = options.output_dir.clone().map(|d| d.display().to_string());
    if let Some(dir) = output_dir {
        values.insert("output_dir".into(), SettingValue::Text(dir));
    }
    Settings::from_values(&values).map_err(|e| mlua::Error::runtime(format!("ft.trainer: {e}")))?;

    let model = spec
        .get::<Option<LuaModel>>("model")?
        .ok_or_else(|| mlua::Error::runtime("ft.trainer: `model` is required (e.g. ft.model.t5{preset = \"tiny\"})"))?;
    let train = spec
        .get::<Option<LuaDataset>>("train")?
        .ok_or_else(|| mlua::Error::runtime("ft.trainer: `train` is required (a dataset from ft.data.qa)"))?;
    let mut metrics = Vec::new();
    if let Some(table) = spec.get::<Option<Table>>("metrics")? {
        for pair in table.pairs::<String, Function>() {
            let (name, function) =
                pair.map_err(|e| mlua::Error::runtime(format!("ft.trainer: `metrics` maps names to functions: {e}")))?;
            metrics.push((name.trim_start_matches("eval_").to_owned(), function));
        }
        metrics.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut trainer = LuaTrainer {
        values,
        model,
        train,
        eval: spec.get("eval")?,
        schedule: spec.get("schedule")?,
        augment: spec.get("augment")?,
        handlers: Vec::new(),
        metrics,
    };
    if let Some(callbacks) = spec.get::<Option<Table>>("callbacks")? {
        for (i, callback) in callbacks.sequence_values::<Table>().enumerate() {
            trainer.add_callback(callback?, i + 1)?;
        }
    }
    Ok(trainer)
}

fn insert_setting(values: &mut BTreeMap<String, SettingValue>, key: String, value: Value) -> mlua::Result<()> {
    canonical_key(&key).map_err(|e| mlua::Error::runtime(format!("ft.trainer: {e}")))?;
    let value = match value {
        Value::Integer(i) => SettingValue::Number(i as f64),
        Value::Number(n) => SettingValue::Number(n),
        Value::Boolean(b) => SettingValue::Bool(b),
        Value::String(s) => SettingValue::Text(s.to_str()?.to_owned()),
        // A list of strings (e.g. report_to = {"tensorboard", "jsonl"}) becomes "a,b".
        Value::Table(list) => {
            let items = list.sequence_values::<String>().collect::<mlua::Result<Vec<_>>>()?;
            SettingValue::Text(items.join(","))
        }
        other => {
            return Err(mlua::Error::runtime(format!("ft.trainer: setting `{key}` cannot be a {}", other.type_name())))
        }
    };
    values.insert(key, value);
    Ok(())
}

impl LuaTrainer {
    /// Registers every `on_<event>` method of a callback table.
    fn add_callback(&mut self, callback: Table, position: usize) -> mlua::Result<()> {
        let mut name = callback.get::<Option<String>>("name")?.unwrap_or_else(|| format!("callback #{position}"));
        if self.handlers.iter().any(|h| h.source == name) {
            name = format!("{name} #{position}");
        }
        let mut found = false;
        for event in Event::ALL {
            if let Some(function) = callback.get::<Option<Function>>(format!("on_{}", event.name()))? {
                self.handlers.push(Handler { event, function, receiver: Some(callback.clone()), source: name.clone() });
                found = true;
            }
        }
        if !found {
            return Err(mlua::Error::runtime(format!(
                "ft.trainer: {name} has no on_<event> method (events: train_begin, step_end, eval_end, ...)"
            )));
        }
        Ok(())
    }
}

impl UserData for LuaTrainer {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("on", |lua, this, (event, function): (String, Function)| {
            let event = Event::from_name(&event).map_err(|e| mlua::Error::runtime(format!("run:on: {e}")))?;
            let source = caller_location(lua).unwrap_or_else(|| format!("run:on(\"{}\")", event.name()));
            this.handlers.push(Handler { event, function, receiver: None, source });
            Ok(())
        });
        methods.add_method("fit", |lua, this, ()| {
            let job = this.job(lua).map_err(|e| mlua::Error::runtime(format!("{e:#}")))?;
            let mut hooks = LuaHooks {
                lua,
                handlers: &this.handlers,
                schedule: this.schedule.as_ref(),
                augment: this.augment.as_ref(),
                metrics: &this.metrics,
            };
            let result = fit(&job, &mut hooks).map_err(|e| mlua::Error::runtime(format!("{e:#}")))?;
            let table = lua.create_table()?;
            table.set("state", lua.to_value(&result.state)?)?;
            table.set("metrics", lua.to_value(&result.metrics)?)?;
            table.set("best", lua.to_value(&result.state.best)?)?;
            table.set("global_step", result.state.global_step)?;
            table.set("stop_reason", result.state.stop_reason.clone())?;
            table.set("output_dir", job.output_dir.display().to_string())?;
            table.set("model", LuaModel(ModelSpec { weights: Some(result.weights.clone()), ..job.model.clone() }))?;
            table.set("diagnosis", diagnose(lua, &result.history)?)?;
            Ok(table)
        });
    }
}

/// The stdlib's fit diagnosis of a finished run, printed and returned to the script.
fn diagnose(lua: &Lua, history: &[serde_json::Value]) -> mlua::Result<Table> {
    let (verdict, text) = diagnosis(lua, history)?;
    for line in text.lines() {
        tracing::info!("{line}");
    }
    Ok(verdict)
}

/// `ftlua.diagnose`'s verdict on a run's records, as a table and as text.
pub(super) fn diagnosis(lua: &Lua, history: &[serde_json::Value]) -> mlua::Result<(Table, String)> {
    let module: Table = lua.load("return require 'ftlua.diagnose'").set_name("=[ftlua diagnose]").eval()?;
    let verdict: Table = module.get::<Function>("verdict")?.call(lua.to_value(history)?)?;
    let text: String = module.get::<Function>("format")?.call(verdict.clone())?;
    Ok((verdict, text))
}

fn caller_location(lua: &Lua) -> Option<String> {
    let debug = lua.inspect_stack(1, |d| {
        let source = d.source();
        let short = source.short_src.map(|s| s.to_string()).unwrap_or_default();
        format!("{short}:{}", d.current_line().unwrap_or(0))
    })?;
    Some(format!("run:on at {debug}"))
}

impl LuaTrainer {
    fn job(&self, lua: &Lua) -> anyhow::Result<TrainJob> {
        let settings = Settings::from_values(&self.values)?;
        let options = lua.app_data_ref::<RunOptions>().expect("run options installed").clone();
        let base = settings.output_dir.clone().unwrap_or_else(|| options.default_output_dir.clone());
        let output_dir = match &settings.run_name {
            Some(name) => base.join(name),
            None => base,
        };
        let run_info = serde_json::json!({
            "settings": settings,
            "model": self.model.0.config,
            "init_weights": self.model.0.weights,
            "device": format!("{:?}", options.device),
            "train_samples": self.train.0.len(),
            "eval_samples": self.eval.as_ref().map(|e| e.0.len()),
            "versions": {"ftlua": env!("CARGO_PKG_VERSION"), "libtorch": "2.11.0", "lua": "5.4"},
        });
        if self.schedule.is_none() {
            tracing::info!("no schedule given: constant learning rate {}", settings.learning_rate);
        }
        // The data is encoded with the model's tokenizer.
        let with_tokenizer = |data: &Dataset| {
            let mut data = data.clone();
            data.options.tokenizer = self.model.0.tokenizer.clone();
            data
        };
        Ok(TrainJob {
            settings,
            model: self.model.0.clone(),
            train: with_tokenizer(&self.train.0),
            eval: self.eval.as_ref().map(|e| with_tokenizer(&e.0)),
            device: options.device,
            output_dir,
            run_info,
        })
    }
}

struct LuaHooks<'a> {
    lua: &'a Lua,
    handlers: &'a [Handler],
    schedule: Option<&'a Function>,
    augment: Option<&'a Function>,
    metrics: &'a [(String, Function)],
}

fn lua_anyhow(e: mlua::Error) -> anyhow::Error {
    anyhow!("{}", lua_error_text(&e))
}

impl LuaHooks<'_> {
    /// Each callback table once, by its name (state is saved and restored under that name).
    fn callbacks(&self) -> Vec<(String, Table)> {
        let mut seen: Vec<(String, Table)> = Vec::new();
        for handler in self.handlers {
            if let Some(receiver) = &handler.receiver {
                if !seen.iter().any(|(name, _)| *name == handler.source) {
                    seen.push((handler.source.clone(), receiver.clone()));
                }
            }
        }
        seen
    }
}

impl Hooks for LuaHooks<'_> {
    fn wants(&self, event: Event) -> bool {
        self.handlers.iter().any(|h| h.event == event)
    }

    fn fire(
        &mut self,
        event: Event,
        state: &TrainerState,
        payload: Option<&serde_json::Value>,
    ) -> anyhow::Result<Decision> {
        let state = self.lua.to_value(state).map_err(lua_anyhow)?;
        let metrics = match payload {
            Some(p) => self.lua.to_value(p).map_err(lua_anyhow)?,
            None => Value::Nil,
        };
        let mut decision = Decision::default();
        for handler in self.handlers.iter().filter(|h| h.event == event) {
            let returned: Value = match &handler.receiver {
                Some(receiver) => handler.function.call((receiver.clone(), state.clone(), metrics.clone())),
                None => handler.function.call((state.clone(), metrics.clone())),
            }
            .map_err(|e| anyhow!("in {} ({}): {}", handler.source, event.name(), lua_error_text(&e)))?;
            let d = parse_decision(&returned, &handler.source)
                .map_err(|e| anyhow!("{} ({}): {}", handler.source, event.name(), lua_error_text(&e)))?;
            d.validate(&handler.source)?;
            decision.merge(d);
        }
        Ok(decision)
    }

    fn state_dict(&mut self) -> anyhow::Result<serde_json::Value> {
        let mut states = serde_json::Map::new();
        for (name, callback) in self.callbacks() {
            if let Some(method) = callback.get::<Option<Function>>("state_dict").map_err(lua_anyhow)? {
                let value: Value = method
                    .call(callback.clone())
                    .map_err(|e| anyhow!("{name}:state_dict(): {}", lua_error_text(&e)))?;
                let json: serde_json::Value = self
                    .lua
                    .from_value(value)
                    .map_err(|e| anyhow!("{name}:state_dict() must return plain data: {e}"))?;
                states.insert(name, json);
            }
        }
        Ok(serde_json::Value::Object(states))
    }

    fn load_state_dict(&mut self, state: &serde_json::Value) -> anyhow::Result<()> {
        for (name, callback) in self.callbacks() {
            let (Some(saved), Some(method)) =
                (state.get(&name), callback.get::<Option<Function>>("load_state_dict").map_err(lua_anyhow)?)
            else {
                continue;
            };
            let value = self.lua.to_value(saved).map_err(lua_anyhow)?;
            method
                .call::<()>((callback.clone(), value))
                .map_err(|e| anyhow!("{name}:load_state_dict(): {}", lua_error_text(&e)))?;
        }
        Ok(())
    }

    fn metrics(&mut self, predictions: &[String], references: &[String]) -> anyhow::Result<crate::train::Metrics> {
        let mut out = crate::train::Metrics::new();
        if self.metrics.is_empty() {
            return Ok(out);
        }
        let predictions = self.lua.create_sequence_from(predictions.iter().map(String::as_str)).map_err(lua_anyhow)?;
        let references = self.lua.create_sequence_from(references.iter().map(String::as_str)).map_err(lua_anyhow)?;
        for (name, function) in self.metrics {
            let value: f64 = function
                .call((predictions.clone(), references.clone()))
                .map_err(|e| anyhow!("in metric `{name}`: {}", lua_error_text(&e)))?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    fn lr_factor(&mut self, step: u64, max_steps: u64, warmup_steps: u64) -> anyhow::Result<f64> {
        let Some(schedule) = self.schedule else {
            return Ok(1.0);
        };
        let factor: f64 = schedule
            .call((step, max_steps, warmup_steps))
            .map_err(|e| anyhow!("in the schedule: {}", lua_error_text(&e)))?;
        if !factor.is_finite() || factor < 0.0 {
            anyhow::bail!("the schedule returned {factor} at step {step}: expected a finite multiplier ≥ 0");
        }
        Ok(factor)
    }

    fn augment(&mut self, seed: u64, epoch: u64, samples: &[QaSample]) -> anyhow::Result<Option<Vec<QaSample>>> {
        let Some(augment) = self.augment else {
            return Ok(None);
        };
        let lua = self.lua;
        let augmented = samples
            .iter()
            .enumerate()
            .map(|(i, sample)| {
                let what = format!("augment: epoch {epoch}, sample {}", i + 1);
                let out = augment
                    .call((sample_table(lua, sample)?, LuaRng::for_sample(seed, epoch, i)))
                    .map_err(|e| mlua::Error::runtime(format!("{what}: {}", lua_error_text(&e))))?;
                sample_from_lua(lua, out, &what)
            })
            .collect::<mlua::Result<Vec<_>>>()
            .map_err(lua_anyhow)?;
        Ok(Some(augmented))
    }
}

const DECISION_KEYS: &[&str] = &[
    "stop",
    "reason",
    "save",
    "eval",
    "lr",
    "batch_size",
    "grad_accum",
    "weight_decay",
    "find_batch_size",
    "max_source_len",
    "delete_checkpoints",
];

fn parse_decision(value: &Value, source: &str) -> mlua::Result<Decision> {
    let fail = |msg: String| Err(mlua::Error::runtime(msg));
    let table = match value {
        Value::Nil => return Ok(Decision::default()),
        Value::Table(t) => t,
        other => {
            return fail(format!(
                "returned a {}, expected nil or a decision table like {{stop = true}}",
                other.type_name()
            ))
        }
    };
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let name = key.to_string()?;
        if !DECISION_KEYS.contains(&name.as_str()) {
            return fail(format!("returned unknown decision `{name}` (known: {})", DECISION_KEYS.join(", ")));
        }
    }
    let flag = |key: &str| -> mlua::Result<bool> { Ok(table.get::<Option<bool>>(key)?.unwrap_or(false)) };
    let stop = match table.get::<Value>("stop")? {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) => {
            Some(table.get::<Option<String>>("reason")?.unwrap_or_else(|| format!("stopped by {source}")))
        }
        Value::String(s) => Some(s.to_str()?.to_owned()),
        other => return fail(format!("`stop` must be true or a reason string, got a {}", other.type_name())),
    };
    Ok(Decision {
        stop,
        save: flag("save")?,
        eval: flag("eval")?,
        lr: table.get("lr")?,
        batch_size: table.get("batch_size")?,
        grad_accum: table.get("grad_accum")?,
        weight_decay: table.get("weight_decay")?,
        find_batch_size: table.get("find_batch_size")?,
        max_source_len: table.get("max_source_len")?,
        delete_checkpoints: table.get::<Option<Vec<u64>>>("delete_checkpoints")?.unwrap_or_default(),
    })
}
