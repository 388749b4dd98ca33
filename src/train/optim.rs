//! AdamW with its state in the open so it can be checkpointed, and every call fallible (an OOM in
//! the update is an `Err`, not a panic). The update is PyTorch's `torch.optim.AdamW(fused=True)`.
//! Like HF's Trainer, biases and layer-norm weights get no weight decay.

use crate::model::t5::TorchResult;
use crate::native::fused_adamw;
use anyhow::Context;
use std::collections::HashMap;
use tch::{nn::VarStore, Kind, Tensor};

struct Param {
    name: String,
    value: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    decay: bool,
}

pub struct AdamW {
    params: Vec<Param>,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Updates applied so far (PyTorch's per-parameter `step`, shared since all update together).
    pub step: i64,
    /// The parameter an interrupted update resumes from (0 when no update is under way).
    next_param: usize,
}

/// The trainable tensors ordered by name: one order for the optimizer's state and for every
/// process of a data-parallel run.
pub fn named_parameters(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// HF's `get_decay_parameter_names`: everything but biases and layer norms.
pub fn decays(name: &str) -> bool {
    !(name.contains("bias") || name.contains("layer_norm"))
}

impl AdamW {
    pub fn new(vs: &VarStore, beta1: f64, beta2: f64, eps: f64) -> AdamW {
        let params = named_parameters(vs)
            .into_iter()
            .map(|(name, value)| Param {
                decay: decays(&name),
                exp_avg: value.zeros_like(),
                exp_avg_sq: value.zeros_like(),
                name,
                value,
            })
            .collect();
        AdamW { params, beta1, beta2, eps, step: 0, next_param: 0 }
    }

    pub fn zero_grad(&self) -> TorchResult<()> {
        for p in &self.params {
            let mut grad = p.value.f_grad()?;
            if grad.defined() {
                let _ = grad.f_zero_()?;
            }
        }
        Ok(())
    }

    /// The global L2 norm of all gradients; scales them down to `max_norm` when above it
    /// (`max_norm` 0 only measures). Returns the norm before clipping.
    pub fn clip_grad_norm(&self, max_norm: f64) -> TorchResult<f64> {
        let _no_grad = tch::no_grad_guard();
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.value.f_grad()).collect::<TorchResult<_>>()?;
        let norms: Vec<Tensor> = grads
            .iter()
            .filter(|g| g.defined())
            .map(|g| g.f_norm_scalaropt_dim(2, [0i64; 0].as_slice(), false))
            .collect::<TorchResult<_>>()?;
        if norms.is_empty() {
            return Ok(0.0);
        }
        let total = Tensor::f_stack(&norms, 0)?.f_norm()?.f_double_value(&[])?;
        if max_norm > 0.0 && total.is_finite() {
            let coef = (max_norm / (total + 1e-6)).min(1.0);
            if coef < 1.0 {
                for mut g in grads.into_iter().filter(|g| g.defined()) {
                    let _ = g.f_mul_scalar_(coef)?;
                }
            }
        }
        Ok(total)
    }

    /// One AdamW update, parameter by parameter with ATen's fused kernel (in place, allocating
    /// nothing), so an error leaves every parameter either updated or untouched; calling `step`
    /// again finishes the same update from the parameter that failed.
    /// `fail_at` makes the update of that parameter index fail once (fault injection for tests).
    pub fn step(&mut self, lr: f64, weight_decay: f64, fail_at: Option<usize>) -> TorchResult<()> {
        let _no_grad = tch::no_grad_guard();
        if self.next_param == 0 {
            self.step += 1;
        }
        let Some(first) = self.params.first() else { return Ok(()) };
        let step = Tensor::f_full([0i64; 0].as_slice(), self.step as f64, (Kind::Float, first.value.device()))?;
        while let Some(p) = self.params.get(self.next_param) {
            if fail_at == Some(self.next_param) {
                return Err(tch::TchError::Torch("CUDA out of memory (injected into the optimizer update)".into()));
            }
            let grad = p.value.f_grad()?;
            if grad.defined() {
                let decay = if p.decay { weight_decay } else { 0.0 };
                let betas = (self.beta1, self.beta2);
                fused_adamw(&p.value, &grad, &p.exp_avg, &p.exp_avg_sq, &step, lr, betas, decay, self.eps)?;
            }
            self.next_param += 1;
        }
        self.next_param = 0;
        Ok(())
    }

    /// Moment tensors by parameter name, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .flat_map(|p| {
                [
                    (format!("{}.exp_avg", p.name), p.exp_avg.shallow_clone()),
                    (format!("{}.exp_avg_sq", p.name), p.exp_avg_sq.shallow_clone()),
                ]
            })
            .collect()
    }

    /// Restores moments saved by [`AdamW::state`] and the update count.
    pub fn load_state(&mut self, mut saved: HashMap<String, Tensor>, step: i64) -> anyhow::Result<()> {
        let _no_grad = tch::no_grad_guard();
        for p in &mut self.params {
            for (suffix, target) in [("exp_avg", &mut p.exp_avg), ("exp_avg_sq", &mut p.exp_avg_sq)] {
                let key = format!("{}.{suffix}", p.name);
                let value = saved.remove(&key).with_context(|| format!("optimizer state lacks {key}"))?;
                if value.size() != target.size() {
                    anyhow::bail!(
                        "optimizer state {key} has shape {:?}, the model needs {:?}",
                        value.size(),
                        target.size()
                    );
                }
                target.f_copy_(&value)?;
            }
        }
        self.step = step;
        Ok(())
    }

    pub fn parameter_count(&self) -> i64 {
        self.params.iter().map(|p| p.value.numel() as i64).sum()
    }
}
