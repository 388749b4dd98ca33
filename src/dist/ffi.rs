//! The C interface of csrc/dist.cpp.

use std::ffi::{c_char, c_int};
use torch_sys::C_tensor;

#[repr(C)]
pub struct FtluaGroup {
    _private: [u8; 0],
}

#[repr(C)]
pub struct FtluaBuckets {
    _private: [u8; 0],
}

extern "C" {
    pub fn ftlua_dist_new(
        backend: *const c_char,
        addr: *const c_char,
        port: u16,
        rank: c_int,
        size: c_int,
        agent_store: bool,
        timeout_ms: i64,
        out: *mut *mut FtluaGroup,
    ) -> c_int;
    pub fn ftlua_dist_free(group: *mut FtluaGroup);
    pub fn ftlua_dist_all_reduce_sum(group: *mut FtluaGroup, tensors: *const *mut C_tensor, count: usize) -> c_int;
    pub fn ftlua_dist_broadcast(group: *mut FtluaGroup, tensor: *mut C_tensor, root: c_int) -> c_int;
    pub fn ftlua_dist_buckets_new(
        params: *const *mut C_tensor,
        count: usize,
        bucket_bytes: i64,
        out: *mut *mut FtluaBuckets,
    ) -> c_int;
    pub fn ftlua_dist_buckets_count(buckets: *mut FtluaBuckets) -> usize;
    pub fn ftlua_dist_buckets_intact(buckets: *mut FtluaBuckets) -> bool;
    pub fn ftlua_dist_buckets_all_reduce(group: *mut FtluaGroup, buckets: *mut FtluaBuckets) -> c_int;
    pub fn ftlua_dist_buckets_free(buckets: *mut FtluaBuckets);
}

/// Turns a shim status into a `Result`, with the C++ exception's message on failure.
pub fn check(status: c_int, what: &str) -> anyhow::Result<()> {
    match crate::native::failure(status) {
        Some(message) => anyhow::bail!("{what}: {message}"),
        None => Ok(()),
    }
}
