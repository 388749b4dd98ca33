//! `ft.model`: model descriptions. Weights are created by the trainer, on its device.

use crate::model::{weights, ModelSpec, T5Config};
use mlua::{FromLua, Lua, LuaSerdeExt, Table, UserData, UserDataMethods, Value};

#[derive(Clone)]
pub struct LuaModel(pub ModelSpec);

impl FromLua for LuaModel {
    fn from_lua(value: Value, _: &Lua) -> mlua::Result<Self> {
        super::handle(value, "a model (from ft.model.t5 or ft.model.load)")
    }
}

impl UserData for LuaModel {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("info", |lua, this, ()| {
            let info = lua.create_table()?;
            info.set("config", lua.to_value(&this.0.config)?)?;
            info.set("parameters", parameter_count(&this.0.config))?;
            info.set("weights", this.0.weights.as_ref().map(|p| p.display().to_string()))?;
            Ok(info)
        });
    }
}

/// Parameters of a T5 with this config, counted without allocating it.
pub fn parameter_count(c: &T5Config) -> i64 {
    let attention = 4 * c.d_model * c.inner_dim();
    let ff = c.d_model * c.d_ff * if c.feed_forward_proj == "gated-gelu" { 3 } else { 2 };
    let encoder = c.num_layers * (attention + ff + 2 * c.d_model) + c.d_model;
    let decoder = c.decoder_layers() * (2 * attention + ff + 3 * c.d_model) + c.d_model;
    let bias = 2 * c.relative_attention_num_buckets * c.num_heads;
    let head = if c.tie_word_embeddings { 0 } else { c.vocab_size * c.d_model };
    c.vocab_size * c.d_model + encoder + decoder + bias + head
}

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let model = lua.create_table()?;
    model.set(
        "t5",
        lua.create_function(|lua, opts: Option<Table>| {
            let opts = match opts {
                Some(t) => t,
                None => lua.create_table()?,
            };
            let preset: String = opts.get::<Option<String>>("preset")?.unwrap_or_else(|| "tiny".into());
            let mut config = T5Config::preset(&preset).map_err(mlua::Error::external)?;
            // Any other field overrides the preset's config value of the same name.
            let mut json = serde_json::to_value(&config).map_err(mlua::Error::external)?;
            for pair in opts.pairs::<String, Value>() {
                let (key, value) = pair?;
                if key == "preset" {
                    continue;
                }
                if json.get(&key).is_none() {
                    return Err(mlua::Error::runtime(format!("ft.model.t5: unknown config field `{key}`")));
                }
                json[&key] = lua.from_value(value)?;
            }
            config = serde_json::from_value(json).map_err(|e| mlua::Error::runtime(format!("ft.model.t5: {e}")))?;
            config.validate().map_err(mlua::Error::external)?;
            Ok(LuaModel(ModelSpec { config, weights: None }))
        })?,
    )?;
    model.set(
        "load",
        lua.create_function(|_, dir: String| {
            let path = std::path::Path::new(&dir);
            let config = T5Config::load(&path.join("config.json"))
                .map_err(|e| mlua::Error::runtime(format!("ft.model.load: {e:#}")))?;
            weights::weight_files(path).map_err(|e| mlua::Error::runtime(format!("ft.model.load: {e:#}")))?;
            Ok(LuaModel(ModelSpec { config, weights: Some(path.to_owned()) }))
        })?,
    )?;
    Ok(model)
}
