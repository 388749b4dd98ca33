//! The embedded Lua runtime: `require "ftlua"` (native API) and `require "ftlua.<module>"`
//! (the standard library, embedded, overridable through `package.path`).

mod data;
mod device;
mod log;
mod model;
mod rng;
mod stdlib;
mod trainer;

use crate::train::settings::Value;
use anyhow::{Context, Result};
use mlua::{Lua, LuaOptions, StdLib, Table};
use std::path::{Path, PathBuf};
use tch::Device;

/// What the command line passes to the script's trainers.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--set key=value` overrides, applied over every trainer's settings.
    pub overrides: Vec<(String, Value)>,
    pub device: Device,
    /// `--output-dir`, which wins over the script's.
    pub output_dir: Option<PathBuf>,
    /// Default output directory: `runs/<script name>`.
    pub default_output_dir: PathBuf,
}

/// A Lua state with the ftlua API and standard library installed.
pub fn new_runtime(options: RunOptions) -> Result<Lua> {
    let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default())
        .map_err(|e| anyhow::anyhow!("creating the Lua state: {e}"))?;
    lua.set_app_data(options);
    install(&lua).map_err(|e| anyhow::anyhow!("installing the ftlua Lua API: {e}"))?;
    Ok(lua)
}

fn install(lua: &Lua) -> mlua::Result<()> {
    let package: Table = lua.globals().get("package")?;
    let path: String = package.get("path")?;
    package.set("path", format!("./stdlib/?.lua;./stdlib/?/init.lua;{path}"))?;
    stdlib::install_searcher(lua, &package)?;
    let preload: Table = package.get("preload")?;
    preload.set("ftlua", lua.create_function(|lua, ()| native_module(lua))?)?;
    Ok(())
}

fn native_module(lua: &Lua) -> mlua::Result<Table> {
    let ft = lua.create_table()?;
    ft.set("data", data::module(lua)?)?;
    ft.set("model", model::module(lua)?)?;
    ft.set("device", device::module(lua)?)?;
    ft.set("log", log::module(lua)?)?;
    ft.set("trainer", lua.create_function(trainer::create)?)?;
    ft.set("json", json_module(lua)?)?;
    ft.set("version", env!("CARGO_PKG_VERSION"))?;
    Ok(ft)
}

/// The stdlib's diagnosis of a run's records (the lines of its metrics.jsonl), as text; the same
/// that `run:fit()` prints at the end of a run.
pub fn diagnose_records(records: &[serde_json::Value]) -> Result<String> {
    let lua = new_runtime(RunOptions {
        overrides: Vec::new(),
        device: Device::Cpu,
        output_dir: None,
        default_output_dir: PathBuf::from("runs/report"),
    })?;
    let (_, text) = trainer::diagnosis(&lua, records).map_err(|e| anyhow::anyhow!("{}", lua_error_text(&e)))?;
    Ok(text)
}

/// `ft.json.encode(value)` (sorted keys, pretty) and `ft.json.decode(text)`, through serde.
fn json_module(lua: &Lua) -> mlua::Result<Table> {
    use mlua::LuaSerdeExt;
    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.create_function(|lua, value: mlua::Value| {
            let value: serde_json::Value = lua.from_value(value)?;
            serde_json::to_string_pretty(&value).map_err(|e| mlua::Error::runtime(format!("json.encode: {e}")))
        })?,
    )?;
    json.set(
        "decode",
        lua.create_function(|lua, text: String| {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| mlua::Error::runtime(format!("json.decode: {e}")))?;
            lua.to_value(&value)
        })?,
    )?;
    Ok(json)
}

/// Reads a handle (userdata `T`, cloned) from a Lua value; the error names what was expected.
fn handle<T: mlua::UserData + Clone + 'static>(value: mlua::Value, expected: &str) -> mlua::Result<T> {
    match value {
        mlua::Value::UserData(ud) => Ok(ud.borrow::<T>()?.clone()),
        other => Err(mlua::Error::runtime(format!("expected {expected}, got {}", other.type_name()))),
    }
}

/// Runs a script file; its chunk is named after its path so errors say `path:line:`.
pub fn run_file(lua: &Lua, path: &Path) -> Result<()> {
    let source = std::fs::read(path).with_context(|| format!("cannot read script {}", path.display()))?;
    lua.load(source)
        .set_name(format!("@{}", path.display()))
        .exec()
        .map_err(|e| anyhow::anyhow!("{}", lua_error_text(&e)))
}

/// The message and traceback of a Lua error, without mlua's wrapping noise.
pub fn lua_error_text(error: &mlua::Error) -> String {
    match error {
        mlua::Error::CallbackError { traceback, cause } => {
            format!("{}\n{traceback}", lua_error_text(cause))
        }
        mlua::Error::WithContext { context, cause } => {
            format!("{context}: {}", lua_error_text(cause))
        }
        mlua::Error::ExternalError(e) => format!("{e:#}"),
        other => other.to_string(),
    }
}
