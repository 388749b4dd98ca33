//! `ft.device`: what the run trains on, and how much room it has.

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
            let (name, total, free) = match selected {
                Device::Cuda(index) => gpu_memory(index).unwrap_or(("CUDA device".into(), None, None)),
                _ => (cpu_name(), host_memory_total(), host_memory_available()),
            };
            info.set("name", name)?;
            info.set("memory_total", total)?;
            info.set("memory_free", free)?;
            let world = crate::dist::world().map_err(mlua::Error::external)?;
            info.set("rank", world.rank)?;
            info.set("world_size", world.size)?;
            info.set("local_rank", world.local_rank)?;
            Ok(info)
        })?,
    )?;
    Ok(device)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// A `/proc/meminfo` field in bytes.
fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').split_whitespace().next()?.parse().ok())?;
    Some(kib * 1024)
}

/// The cgroup's memory limit (containers), when there is one.
fn cgroup_limit() -> Option<u64> {
    std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?.trim().parse().ok()
}

fn host_memory_total() -> Option<u64> {
    let total = meminfo("MemTotal")?;
    Some(cgroup_limit().map_or(total, |limit| limit.min(total)))
}

fn host_memory_available() -> Option<u64> {
    let available = meminfo("MemAvailable")?;
    let used_in_cgroup =
        std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok().and_then(|t| t.trim().parse::<u64>().ok());
    match (cgroup_limit(), used_in_cgroup) {
        (Some(limit), Some(used)) => Some(available.min(limit.saturating_sub(used))),
        _ => Some(available),
    }
}

/// Name, total and free memory of a GPU, from nvidia-smi (libtorch's C API does not expose them).
fn gpu_memory(index: usize) -> Option<(String, Option<u64>, Option<u64>)> {
    let out = std::process::Command::new("nvidia-smi")
        .args([&format!("--id={index}"), "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut fields = text.trim().split(", ");
    let name = fields.next()?.to_string();
    let mib = |f: Option<&str>| f.and_then(|v| v.trim().parse::<u64>().ok()).map(|m| m << 20);
    Some((name, mib(fields.next()), mib(fields.next())))
}
