//! `ft.model`: model descriptions (a config and where its weights are). The trainer creates the
//! weights on its device; `generate` and `save` load them when called.

use super::RunOptions;
use crate::data::{EncodeOptions, Tokenizer};
use crate::model::{generate, weights, ModelSpec, T5Config, T5};
use mlua::{FromLua, Lua, LuaSerdeExt, Table, UserData, UserDataMethods, Value};
use tch::{nn::VarStore, Device, Tensor};

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
        methods.add_method("generate", |lua, this, opts: Table| {
            let device = lua.app_data_ref::<RunOptions>().map(|o| o.device).unwrap_or(Device::Cpu);
            let (_vs, model) = instantiate(&this.0, device).map_err(|e| runtime("generate", e))?;
            let question: String = opts.get("question")?;
            let context: String = opts.get("context")?;
            let template = opts.get::<Option<String>>("template")?.unwrap_or_else(|| EncodeOptions::default().template);
            let prompt = template.replace("{question}", &question).replace("{context}", &context);
            let max_source_len = opts.get::<Option<usize>>("max_source_len")?.unwrap_or(512);
            let ids = this.0.tokenizer.encode(&prompt, max_source_len).map_err(|e| runtime("generate", e))?.ids;
            let options = generate::BeamOptions {
                num_beams: opts.get::<Option<usize>>("num_beams")?.unwrap_or(1).max(1),
                max_new_tokens: opts.get::<Option<i64>>("max_new_tokens")?.unwrap_or(64),
                length_penalty: opts.get::<Option<f32>>("length_penalty")?.unwrap_or(1.0),
            };
            let answer = (|| {
                let input = Tensor::f_from_slice(&ids)?.f_view([1, -1])?.f_to_device(device)?;
                let mask = input.f_ones_like()?;
                let encoded = model.encode(&input, &mask, false)?;
                generate::beam_search(&model, &encoded, &mask, options)
            })()
            .map_err(|e| runtime("generate", e.into()))?;
            Ok(this.0.tokenizer.decode(&answer[0]))
        });
        methods.add_method("save", |_, this, dir: String| {
            let (vs, model) = instantiate(&this.0, Device::Cpu).map_err(|e| runtime("save", e))?;
            let dir = std::path::Path::new(&dir);
            crate::train::checkpoint::write_dir_atomically(dir, |tmp| {
                crate::train::checkpoint::write_model(tmp, &vs, &model.config, &this.0.tokenizer)
            })
            .map_err(|e| runtime("save", e))
        });
    }
}

fn runtime(what: &str, error: anyhow::Error) -> mlua::Error {
    runtime_in(&format!("model:{what}"), error)
}

fn runtime_in(function: &str, error: anyhow::Error) -> mlua::Error {
    mlua::Error::runtime(format!("{function}: {error:#}"))
}

/// Every id the tokenizer produces must have a row in the embedding.
fn check_vocabulary(config: &T5Config, tokenizer: &Tokenizer) -> anyhow::Result<()> {
    let needed = tokenizer.vocab_size() as i64;
    if needed > config.vocab_size {
        anyhow::bail!(
            "the tokenizer ({tokenizer:?}) has {needed} tokens but the model's vocab_size is {}; set vocab_size = {needed} or more",
            config.vocab_size
        );
    }
    Ok(())
}

/// The model with its weights (from `spec.weights`; freshly initialized when it has none).
fn instantiate(spec: &ModelSpec, device: Device) -> anyhow::Result<(VarStore, T5)> {
    let vs = VarStore::new(device);
    let model = T5::new(&vs.root(), spec.config.clone());
    if let Some(dir) = &spec.weights {
        weights::load_into(&vs, dir)?;
    }
    Ok((vs, model))
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
            let tokenizer = match opts.get::<Option<String>>("tokenizer")? {
                Some(path) => Tokenizer::from_file(path.as_ref()).map_err(|e| runtime_in("ft.model.t5", e))?,
                None => Tokenizer::Bytes,
            };
            let mut config = T5Config::preset(&preset).map_err(mlua::Error::external)?;
            // Any other field overrides the preset's config value of the same name.
            let mut json = serde_json::to_value(&config).map_err(mlua::Error::external)?;
            for pair in opts.pairs::<String, Value>() {
                let (key, value) = pair?;
                if key == "preset" || key == "tokenizer" {
                    continue;
                }
                if json.get(&key).is_none() {
                    return Err(mlua::Error::runtime(format!("ft.model.t5: unknown config field `{key}`")));
                }
                json[&key] = lua.from_value(value)?;
            }
            config = serde_json::from_value(json).map_err(|e| mlua::Error::runtime(format!("ft.model.t5: {e}")))?;
            config.validate().map_err(mlua::Error::external)?;
            check_vocabulary(&config, &tokenizer).map_err(|e| runtime_in("ft.model.t5", e))?;
            Ok(LuaModel(ModelSpec { config, weights: None, tokenizer }))
        })?,
    )?;
    model.set(
        "load",
        lua.create_function(|_, dir: String| {
            let path = std::path::Path::new(&dir);
            let config = T5Config::load(&path.join("config.json"))
                .map_err(|e| mlua::Error::runtime(format!("ft.model.load: {e:#}")))?;
            weights::weight_files(path).map_err(|e| mlua::Error::runtime(format!("ft.model.load: {e:#}")))?;
            let tokenizer = Tokenizer::of_checkpoint(path).map_err(|e| runtime_in("ft.model.load", e))?;
            check_vocabulary(&config, &tokenizer).map_err(|e| runtime_in("ft.model.load", e))?;
            Ok(LuaModel(ModelSpec { config, weights: Some(path.to_owned()), tokenizer }))
        })?,
    )?;
    Ok(model)
}
