//! `ft.device`: what the run trains on.

use super::RunOptions;
use mlua::{Lua, Table};
use tch::Device;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let device = lua.create_table()?;
    device.set(
        "info",
        lua.create_function(|lua, ()| {
            let selected = lua.app_data_ref::<RunOptions>().map(|o| o.device).unwrap_or(Device::Cpu);
            let info = lua.create_table()?;
            info.set("kind", if selected.is_cuda() { "cuda" } else { "cpu" })?;
            info.set("cuda_available", tch::Cuda::is_available())?;
            info.set("cuda_devices", tch::Cuda::device_count())?;
            info.set("cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))?;
            Ok(info)
        })?,
    )?;
    Ok(device)
}
