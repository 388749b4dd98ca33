//! `ft.data`: QA datasets as handles; the samples stay in Rust.

use super::rng::LuaRng;
use crate::data::report::TruncationReport;
use crate::data::{load_jsonl, samples_from_value, Dataset, EncodeOptions, FieldNames, OnBadLine, QaSample};
use mlua::LuaSerdeExt;
use mlua::{FromLua, Function, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

#[derive(Clone)]
pub struct LuaDataset(pub Dataset);

impl FromLua for LuaDataset {
    fn from_lua(value: Value, _: &Lua) -> mlua::Result<Self> {
        super::handle(value, "a dataset (from ft.data.qa)")
    }
}

impl UserData for LuaDataset {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.len()));
        methods.add_method("len", |_, this, ()| Ok(this.0.len()));
        methods.add_method("split", |_, this, opts: Option<Table>| {
            let (fraction, seed) = match opts {
                Some(opts) => (
                    opts.get::<Option<f64>>("eval_fraction")?.unwrap_or(0.1),
                    opts.get::<Option<u64>>("seed")?.unwrap_or(42),
                ),
                None => (0.1, 42),
            };
            if !(0.0..1.0).contains(&fraction) {
                return Err(mlua::Error::runtime(format!("split: eval_fraction must be in [0, 1), got {fraction}")));
            }
            let (train, eval) = this.0.split(fraction, seed);
            Ok((LuaDataset(train), LuaDataset(eval)))
        });
        methods.add_method("kfold", |lua, this, opts: Option<Table>| {
            let (k, seed) = match opts {
                Some(opts) => {
                    (opts.get::<Option<usize>>("k")?.unwrap_or(5), opts.get::<Option<u64>>("seed")?.unwrap_or(42))
                }
                None => (5, 42),
            };
            let documents =
                this.0.samples.iter().map(|s| s.context.as_str()).collect::<std::collections::HashSet<_>>().len();
            if k < 2 || k > documents {
                return Err(mlua::Error::runtime(format!(
                    "kfold: k must be between 2 and the number of documents ({documents}), got {k}"
                )));
            }
            let folds = lua.create_table()?;
            for (train, eval) in this.0.kfold(k, seed) {
                let fold = lua.create_table()?;
                fold.set("train", LuaDataset(train))?;
                fold.set("eval", LuaDataset(eval))?;
                folds.push(fold)?;
            }
            Ok(folds)
        });
        methods.add_method("map", |lua, this, f: Function| {
            let mapped = this
                .0
                .samples
                .iter()
                .enumerate()
                .map(|(i, sample)| {
                    let out: Value = f.call(sample_table(lua, sample)?)?;
                    sample_from_lua(lua, out, &format!("map: sample {}", i + 1))
                })
                .collect::<mlua::Result<Vec<_>>>()?;
            Ok(LuaDataset(Dataset { samples: std::sync::Arc::new(mapped), ..this.0.clone() }))
        });
        methods.add_method("report", |lua, this, ()| {
            let report = TruncationReport::of(&this.0).map_err(|e| mlua::Error::runtime(format!("report: {e:#}")))?;
            lua.to_value(&report)
        });
        methods.add_method("write_jsonl", |_, this, path: String| {
            crate::data::write_jsonl(path.as_ref(), &this.0.samples)
                .map_err(|e| mlua::Error::runtime(format!("write_jsonl: {e:#}")))
        });
        methods.add_method("sample", |lua, this, index: usize| {
            let sample = this.0.samples.get(index.wrapping_sub(1)).ok_or_else(|| {
                mlua::Error::runtime(format!("sample: index {index} out of range 1..{}", this.0.len()))
            })?;
            let t = sample_table(lua, sample)?;
            t.set("prompt", this.0.prompt(sample))?;
            Ok(t)
        });
    }
}

/// `{question, context, answer}` as a Lua table.
pub fn sample_table(lua: &Lua, sample: &QaSample) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("question", sample.question.as_str())?;
    t.set("context", sample.context.as_str())?;
    t.set("answer", sample.answer.as_str())?;
    Ok(t)
}

/// One sample back from Lua (what a map or augment function returned); `what` names it in errors.
pub fn sample_from_lua(lua: &Lua, value: Value, what: &str) -> mlua::Result<QaSample> {
    if !value.is_table() {
        return Err(mlua::Error::runtime(format!("{what}: expected a sample table, got {}", value.type_name())));
    }
    let json: serde_json::Value = lua.from_value(value)?;
    let mut samples = samples_from_value(&json, &FieldNames::default())
        .map_err(|problem| mlua::Error::runtime(format!("{what}: {problem}")))?;
    match samples.len() {
        1 => Ok(samples.remove(0)),
        n => Err(mlua::Error::runtime(format!("{what}: expected one sample, got a document of {n}"))),
    }
}

/// The options `ft.data.qa` and `ft.data.from_table` share.
fn read_options(opts: Option<Table>, who: &str) -> mlua::Result<(EncodeOptions, FieldNames, OnBadLine)> {
    let mut options = EncodeOptions::default();
    let mut fields = FieldNames::default();
    let mut on_bad_line = OnBadLine::Error;
    if let Some(opts) = opts {
        on_bad_line = match opts.get::<Option<String>>("on_bad_line")?.as_deref() {
            None | Some("error") => OnBadLine::Error,
            Some("skip") => OnBadLine::Skip,
            Some(other) => {
                return Err(mlua::Error::runtime(format!(
                    "{who}: on_bad_line must be \"error\" or \"skip\", got {other:?}"
                )))
            }
        };
        if let Some(n) = opts.get::<Option<usize>>("max_source_len")? {
            options.max_source_len = n;
        }
        if let Some(n) = opts.get::<Option<usize>>("max_target_len")? {
            options.max_target_len = n;
        }
        if let Some(t) = opts.get::<Option<String>>("template")? {
            options.template = t;
        }
        if let Some(f) = opts.get::<Option<Table>>("fields")? {
            fields.question = f.get::<Option<String>>("question")?.unwrap_or(fields.question);
            fields.context = f.get::<Option<String>>("context")?.unwrap_or(fields.context);
            fields.answer = f.get::<Option<String>>("answer")?.unwrap_or(fields.answer);
        }
    }
    if options.max_source_len < 2 || options.max_target_len < 2 {
        return Err(mlua::Error::runtime(format!("{who}: max_source_len and max_target_len must be at least 2")));
    }
    Ok((options, fields, on_bad_line))
}

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let data = lua.create_table()?;
    data.set(
        "qa",
        lua.create_function(|_, (path, opts): (String, Option<Table>)| {
            let (options, fields, on_bad_line) = read_options(opts, "ft.data.qa")?;
            let loaded = load_jsonl(path.as_ref(), &fields, on_bad_line).map_err(mlua::Error::external)?;
            if let Some(first) = loaded.skipped.first() {
                tracing::warn!(
                    "{path}: skipped {} bad lines of {} (first: line {}: {})",
                    loaded.skipped.len(),
                    loaded.samples.len() + loaded.skipped.len(),
                    first.line,
                    first.problem
                );
            }
            let mut data = Dataset::new(loaded.samples, options);
            data.skipped_lines = loaded.skipped.len();
            Ok(LuaDataset(data))
        })?,
    )?;
    data.set(
        "from_table",
        lua.create_function(|lua, (items, opts): (Table, Option<Table>)| {
            let (options, fields, _) = read_options(opts, "ft.data.from_table")?;
            let mut samples = Vec::new();
            for (i, item) in items.sequence_values::<Value>().enumerate() {
                let json: serde_json::Value = lua.from_value(item?)?;
                let parsed = samples_from_value(&json, &fields).map_err(|problem| {
                    mlua::Error::runtime(format!("ft.data.from_table: item {}: {problem}", i + 1))
                })?;
                samples.extend(parsed);
            }
            if samples.is_empty() {
                return Err(mlua::Error::runtime("ft.data.from_table: no samples"));
            }
            Ok(LuaDataset(Dataset::new(samples, options)))
        })?,
    )?;
    data.set("rng", lua.create_function(|_, seed: u64| Ok(LuaRng::new(seed)))?)?;
    Ok(data)
}
