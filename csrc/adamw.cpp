// One parameter's AdamW update with ATen's fused kernel, the one torch.optim.AdamW(fused=True)
// (and HF's Trainer by default) runs: one pass over the parameter, its gradient and both moments,
// in place, allocating nothing (so it cannot run out of memory part-way).

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "guard.h"

extern "C" int ftlua_fused_adamw(at::Tensor* param, at::Tensor* grad, at::Tensor* exp_avg, at::Tensor* exp_avg_sq,
                                 at::Tensor* step, double lr, double beta1, double beta2, double weight_decay,
                                 double eps) {
  return ftlua::guarded([&] {
    at::NoGradGuard no_grad;
    at::_fused_adamw_({*param}, {*grad}, {*exp_avg}, {*exp_avg_sq}, {}, {*step}, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  });
}
