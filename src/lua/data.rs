//! `ft.data`: QA datasets as handles; the samples stay in Rust.

use crate::data::report::TruncationReport;
use crate::data::{load_jsonl, Dataset, EncodeOptions, FieldNames, OnBadLine};
use mlua::LuaSerdeExt;
use mlua::{FromLua, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

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
        methods.add_method("report", |lua, this, ()| lua.to_value(&TruncationReport::of(&this.0)));
        methods.add_method("write_jsonl", |_, this, path: String| {
            crate::data::write_jsonl(path.as_ref(), &this.0.samples)
                .map_err(|e| mlua::Error::runtime(format!("write_jsonl: {e:#}")))
        });
        methods.add_method("sample", |lua, this, index: usize| {
            let sample = this.0.samples.get(index.wrapping_sub(1)).ok_or_else(|| {
                mlua::Error::runtime(format!("sample: index {index} out of range 1..{}", this.0.len()))
            })?;
            let t = lua.create_table()?;
            t.set("question", sample.question.as_str())?;
            t.set("context", sample.context.as_str())?;
            t.set("answer", sample.answer.as_str())?;
            t.set("prompt", this.0.prompt(sample))?;
            Ok(t)
        });
    }
}

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let data = lua.create_table()?;
    data.set(
        "qa",
        lua.create_function(|_, (path, opts): (String, Option<Table>)| {
            let mut options = EncodeOptions::default();
            let mut fields = FieldNames::default();
            let mut on_bad_line = OnBadLine::Error;
            if let Some(opts) = opts {
                on_bad_line = match opts.get::<Option<String>>("on_bad_line")?.as_deref() {
                    None | Some("error") => OnBadLine::Error,
                    Some("skip") => OnBadLine::Skip,
                    Some(other) => {
                        return Err(mlua::Error::runtime(format!(
                            "ft.data.qa: on_bad_line must be \"error\" or \"skip\", got {other:?}"
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
                return Err(mlua::Error::runtime("ft.data.qa: max_source_len and max_target_len must be at least 2"));
            }
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
    Ok(data)
}
