//! `ft.log`: messages from scripts, through the same logger as the runtime's.

use mlua::{Lua, Table};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let log = lua.create_table()?;
    log.set("info", lua.create_function(|_, msg: String| Ok(tracing::info!("{msg}")))?)?;
    log.set("warn", lua.create_function(|_, msg: String| Ok(tracing::warn!("{msg}")))?)?;
    log.set("debug", lua.create_function(|_, msg: String| Ok(tracing::debug!("{msg}")))?)?;
    Ok(log)
}
