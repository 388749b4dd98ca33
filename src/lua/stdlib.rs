//! The standard library, embedded at build time, found by a `package.searchers` entry placed after
//! the path searcher, so a file on `package.path` (e.g. a project's own `stdlib/`) overrides it.

use mlua::{Lua, Table, Value};

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

pub fn source(module: &str) -> Option<&'static str> {
    STDLIB.iter().find(|(name, _)| *name == module).map(|(_, src)| *src)
}

pub fn install_searcher(lua: &Lua, package: &Table) -> mlua::Result<()> {
    let searcher = lua.create_function(|lua, module: String| -> mlua::Result<Value> {
        match source(&module) {
            Some(src) => {
                let chunk = lua.load(src).set_name(format!("@[ftlua stdlib]/{}.lua", module.replace('.', "/")));
                Ok(Value::Function(chunk.into_function()?))
            }
            None => Ok(Value::String(lua.create_string(format!("\n\tno embedded module '{module}'"))?)),
        }
    })?;
    let searchers: Table = package.get("searchers")?;
    searchers.raw_insert(3, searcher)
}
