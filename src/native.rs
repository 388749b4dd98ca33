//! The C++ shims in csrc/ (compiled by build.rs) for what tch does not expose: the fused AdamW
//! kernel here, c10d in [`crate::dist`].

use std::ffi::{c_char, c_int, CStr};
use tch::{TchError, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn ftlua_error() -> *const c_char;
    fn ftlua_fused_adamw(
        param: *mut C_tensor,
        grad: *mut C_tensor,
        exp_avg: *mut C_tensor,
        exp_avg_sq: *mut C_tensor,
        step: *mut C_tensor,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> c_int;
}

/// The message of the last failed shim call on this thread, when `status` says it failed.
pub fn failure(status: c_int) -> Option<String> {
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated last message.
    (status != 0).then(|| unsafe { CStr::from_ptr(ftlua_error()) }.to_string_lossy().into_owned())
}

/// AdamW's update of one parameter in place (ATen's `_fused_adamw_`, PyTorch's `fused=True`),
/// with `step` the 1-based update count as a float scalar tensor on the parameter's device.
#[allow(clippy::too_many_arguments)]
pub fn fused_adamw(
    param: &Tensor,
    grad: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    step: &Tensor,
    lr: f64,
    (beta1, beta2): (f64, f64),
    weight_decay: f64,
    eps: f64,
) -> Result<(), TchError> {
    let mut aliases = [param, grad, exp_avg, exp_avg_sq, step].map(Tensor::shallow_clone);
    let [p, g, m, v, s] = aliases.each_mut().map(|t| t.as_mut_ptr());
    // SAFETY: live tensors sharing storage with the arguments, which the kernel updates in place.
    let status = unsafe { ftlua_fused_adamw(p, g, m, v, s, lr, beta1, beta2, weight_decay, eps) };
    failure(status).map_or(Ok(()), |message| Err(TchError::Torch(message)))
}
