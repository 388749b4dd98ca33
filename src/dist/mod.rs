//! Data-parallel training on PyTorch's c10d: the processes a launcher started (`torchrun`, or
//! `mpirun` with MASTER_ADDR/MASTER_PORT) form a Gloo process group. Rank 0 decides (policies,
//! clocks, evaluation) and the others adopt its decisions; gradients are summed in buckets.

mod ffi;

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::ffi::CString;
use std::sync::{Mutex, OnceLock};
use tch::Tensor;

/// How long a collective may wait for the other ranks (PyTorch's default).
const TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// DDP's default bucket size.
const BUCKET_BYTES: i64 = 25 << 20;
/// Payload bytes `agree` sends in its first broadcast; longer ones take a second.
const AGREE_INLINE: usize = 1024;

/// This process's place among the processes of a run.
pub struct World {
    pub rank: usize,
    pub size: usize,
    /// Rank among the processes on this machine: the GPU this process uses.
    pub local_rank: usize,
    group: Option<Group>,
}

struct Group(Mutex<*mut ffi::FtluaGroup>);

// SAFETY: the c10d backend is used from one thread at a time (the mutex), and c10d backends are
// not tied to the thread that created them.
unsafe impl Send for Group {}
unsafe impl Sync for Group {}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: created by ftlua_dist_new and freed once.
        unsafe { ffi::ftlua_dist_free(*self.0.get_mut().unwrap()) }
    }
}

static WORLD: OnceLock<World> = OnceLock::new();

/// The world of this process, set up from the launcher's environment on first use (a single
/// process when no launcher started it).
pub fn world() -> Result<&'static World> {
    if let Some(world) = WORLD.get() {
        return Ok(world);
    }
    let world = World::from_env()?;
    Ok(WORLD.get_or_init(|| world))
}

/// `(rank, local_rank)` as the launcher's environment gives them, without joining the group:
/// for what must be settled before (the log level, the GPU). `(0, 0)` outside a launcher or when
/// the variables are malformed (joining the group reports those).
pub fn launch_ranks() -> (usize, usize) {
    match launch_from(|name| std::env::var(name).ok()) {
        Ok(Some(launch)) => (launch.rank, launch.local_rank),
        _ => (0, 0),
    }
}

/// What a launcher tells its processes.
#[derive(Debug, PartialEq)]
struct Launch {
    rank: usize,
    size: usize,
    local_rank: usize,
    addr: String,
    port: u16,
    /// torchrun's agent serves the rendezvous store itself.
    agent_store: bool,
}

fn launch_from(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>> {
    // torchrun, Open MPI, MPICH / Intel MPI.
    const LAUNCHERS: [[&str; 3]; 3] = [
        ["RANK", "WORLD_SIZE", "LOCAL_RANK"],
        ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"],
        ["PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"],
    ];
    let Some([rank, size, local]) = LAUNCHERS.iter().find(|names| var(names[0]).is_some() && var(names[1]).is_some())
    else {
        return Ok(None);
    };
    let number = |name: &str, default: Option<usize>| -> Result<usize> {
        match var(name) {
            Some(text) => text.trim().parse().with_context(|| format!("{name}={text:?}: expected a whole number")),
            None => default.with_context(|| format!("{name} is not set")),
        }
    };
    let (rank, size) = (number(rank, None)?, number(size, None)?);
    if size == 0 || rank >= size {
        anyhow::bail!("rank {rank} does not fit a world of {size} processes");
    }
    let port = number("MASTER_PORT", Some(29500))?;
    Ok(Some(Launch {
        rank,
        size,
        local_rank: number(local, Some(rank))?,
        addr: var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into()),
        port: u16::try_from(port).with_context(|| format!("MASTER_PORT={port}: not a port"))?,
        agent_store: var("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
    }))
}

impl World {
    fn from_env() -> Result<World> {
        let Some(launch) = launch_from(|name| std::env::var(name).ok())? else {
            return Ok(World { rank: 0, size: 1, local_rank: 0, group: None });
        };
        let (backend, addr) = (CString::new("gloo")?, CString::new(launch.addr.as_str())?);
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid C strings; `raw` receives a group owned by `Group` below.
        let status = unsafe {
            ffi::ftlua_dist_new(
                backend.as_ptr(),
                addr.as_ptr(),
                launch.port,
                launch.rank as i32,
                launch.size as i32,
                launch.agent_store,
                TIMEOUT_MS,
                &mut raw,
            )
        };
        let what = format!(
            "joining the process group as rank {} of {} at {}:{}",
            launch.rank, launch.size, launch.addr, launch.port
        );
        ffi::check(status, &what)?;
        Ok(World {
            rank: launch.rank,
            size: launch.size,
            local_rank: launch.local_rank,
            group: Some(Group(Mutex::new(raw))),
        })
    }

    /// Rank 0, the one that writes logs and checkpoints.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    fn group(&self) -> Option<std::sync::MutexGuard<'_, *mut ffi::FtluaGroup>> {
        self.group.as_ref().filter(|_| self.size > 1).map(|g| g.0.lock().unwrap())
    }

    /// Rank 0's `value`, on every rank.
    pub fn agree<T: Serialize + DeserializeOwned>(&self, value: T) -> Result<T> {
        let Some(group) = self.group() else { return Ok(value) };
        // bincode, not JSON: metrics may be NaN, which JSON cannot carry.
        let bytes = if self.is_main() { bincode::serialize(&value)? } else { Vec::new() };
        let mut head = vec![0u8; 8 + AGREE_INLINE];
        head[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        let inline = bytes.len().min(AGREE_INLINE);
        head[8..8 + inline].copy_from_slice(&bytes[..inline]);
        let head = broadcast_bytes(*group, &head)?;
        let len = u64::from_le_bytes(head[..8].try_into().unwrap()) as usize;
        let mut received = head[8..8 + len.min(AGREE_INLINE)].to_vec();
        if len > AGREE_INLINE {
            let rest = if self.is_main() { bytes[AGREE_INLINE..].to_vec() } else { vec![0u8; len - AGREE_INLINE] };
            received.extend(broadcast_bytes(*group, &rest)?);
        }
        if self.is_main() {
            return Ok(value);
        }
        bincode::deserialize(&received).context("reading rank 0's decision")
    }

    /// Each value summed over the ranks.
    pub fn sum<const N: usize>(&self, values: [f64; N]) -> Result<[f64; N]> {
        let Some(group) = self.group() else { return Ok(values) };
        let mut tensor = Tensor::from_slice(&values);
        // SAFETY: a live tensor, passed as a one-element array.
        ffi::check(unsafe { ffi::ftlua_dist_all_reduce_sum(*group, &tensor.as_mut_ptr(), 1) }, "all-reduce")?;
        let mut summed = [0.0; N];
        tensor.f_copy_data(&mut summed, N)?;
        Ok(summed)
    }

    /// Whether `flag` is set on any rank.
    pub fn any(&self, flag: bool) -> Result<bool> {
        Ok(self.sum([flag as u8 as f64])?[0] > 0.0)
    }

    /// Whether `flag` is set on every rank.
    pub fn all(&self, flag: bool) -> Result<bool> {
        Ok(self.sum([flag as u8 as f64])?[0] == self.size as f64)
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        self.sum([0.0]).map(drop)
    }

    /// Overwrites `tensors` (in place, without recording gradients) with rank 0's.
    pub fn broadcast_tensors(&self, tensors: &[Tensor]) -> Result<()> {
        let Some(group) = self.group() else { return Ok(()) };
        let _no_grad = tch::no_grad_guard();
        for tensor in tensors {
            let mut alias = tensor.shallow_clone();
            // SAFETY: a live tensor sharing storage with `tensor`.
            ffi::check(unsafe { ffi::ftlua_dist_broadcast(*group, alias.as_mut_ptr(), 0) }, "broadcast")?;
        }
        Ok(())
    }
}

fn broadcast_bytes(group: *mut ffi::FtluaGroup, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut tensor = Tensor::from_slice(bytes);
    // SAFETY: a live tensor.
    ffi::check(unsafe { ffi::ftlua_dist_broadcast(group, tensor.as_mut_ptr(), 0) }, "broadcast")?;
    Ok(Vec::<u8>::try_from(&tensor)?)
}

/// The gradients of `params` laid out in flat buckets (each gradient a view into one), so that
/// summing them across ranks is one in-place all-reduce per bucket.
pub struct GradientBuckets {
    params: Vec<Tensor>,
    raw: *mut ffi::FtluaBuckets,
}

impl GradientBuckets {
    /// `params` in the same order on every rank.
    pub fn new(params: Vec<Tensor>) -> GradientBuckets {
        GradientBuckets { params, raw: std::ptr::null_mut() }
    }

    /// Sums every gradient over the ranks. The buckets are laid out on first use, and again if
    /// something replaced a gradient since.
    pub fn sum_across(&mut self, world: &World) -> Result<()> {
        let Some(group) = world.group() else { return Ok(()) };
        // SAFETY: `raw` is null or a live bucket set of `params`.
        if self.raw.is_null() || !unsafe { ffi::ftlua_dist_buckets_intact(self.raw) } {
            self.free();
            let mut pointers: Vec<*mut torch_sys::C_tensor> = self.params.iter_mut().map(|p| p.as_mut_ptr()).collect();
            // SAFETY: live tensors; the shim keeps its own references to them.
            let status = unsafe {
                ffi::ftlua_dist_buckets_new(pointers.as_mut_ptr(), pointers.len(), BUCKET_BYTES, &mut self.raw)
            };
            ffi::check(status, "laying out gradient buckets")?;
            // SAFETY: just created.
            let count = unsafe { ffi::ftlua_dist_buckets_count(self.raw) };
            tracing::debug!("gradients of {} parameters in {count} buckets", self.params.len());
        }
        // SAFETY: live group and buckets.
        ffi::check(unsafe { ffi::ftlua_dist_buckets_all_reduce(*group, self.raw) }, "all-reducing gradients")
    }

    fn free(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: created by ftlua_dist_buckets_new, freed once.
            unsafe { ffi::ftlua_dist_buckets_free(self.raw) };
            self.raw = std::ptr::null_mut();
        }
    }
}

impl Drop for GradientBuckets {
    fn drop(&mut self) {
        self.free();
    }
}

/// The part of a step's samples a rank trains on: contiguous, so that `size` ranks with batch b
/// see exactly the micro-batches one process with batch b and `size` times the accumulation sees.
pub fn shard(indices: &[usize], rank: usize, size: usize) -> &[usize] {
    let per_rank = indices.len().div_ceil(size);
    let start = (rank * per_rank).min(indices.len());
    &indices[start..(start + per_rank).min(indices.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn launchers_are_read_from_their_variables() {
        assert_eq!(launch_from(env(&[])).unwrap(), None);
        let torchrun = [
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
        ];
        let launch = launch_from(env(&torchrun)).unwrap().unwrap();
        assert_eq!(
            launch,
            Launch { rank: 1, size: 2, local_rank: 1, addr: "10.0.0.1".into(), port: 29400, agent_store: true }
        );
        let mpi = [("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1")];
        let launch = launch_from(env(&mpi)).unwrap().unwrap();
        assert_eq!((launch.rank, launch.size, launch.local_rank, launch.port), (3, 4, 1, 29500));
        assert_eq!(launch.addr, "127.0.0.1");
        assert!(!launch.agent_store);
    }

    #[test]
    fn bad_launch_variables_are_named() {
        let error = launch_from(env(&[("RANK", "x"), ("WORLD_SIZE", "2")])).unwrap_err().to_string();
        assert!(error.contains("RANK=\"x\""), "{error}");
        let error = launch_from(env(&[("RANK", "2"), ("WORLD_SIZE", "2")])).unwrap_err().to_string();
        assert!(error.contains("rank 2 does not fit a world of 2"), "{error}");
    }

    #[test]
    fn shards_are_contiguous_cover_the_step_and_never_overlap() {
        let step: Vec<usize> = (10..17).collect();
        let shards: Vec<&[usize]> = (0..3).map(|r| shard(&step, r, 3)).collect();
        assert_eq!(shards, [&[10, 11, 12][..], &[13, 14, 15], &[16]]);
        assert_eq!(shard(&step[..1], 1, 2), &[] as &[usize]);
    }

    #[test]
    fn a_single_process_world_passes_values_through() {
        let world = World { rank: 0, size: 1, local_rank: 0, group: None };
        assert_eq!(world.agree(vec![1.0, f64::NAN]).unwrap()[0], 1.0);
        assert_eq!(world.sum([1.5, 2.0]).unwrap(), [1.5, 2.0]);
        assert!(world.any(true).unwrap() && world.all(true).unwrap() && !world.any(false).unwrap());
        let t = Tensor::from_slice(&[1.0f32, 2.0]);
        world.broadcast_tensors(std::slice::from_ref(&t)).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), [1.0, 2.0]);
    }
}
