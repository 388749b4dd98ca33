#!/usr/bin/env python3
"""Writes tests/golden/adamw.json: parameters after each of 4 steps of torch.optim.AdamW (with
weight decay on `w` but not on `layer_norm.weight`, as ftlua's and HF's grouping does), from fixed
initial values and gradients. tests/optim.rs replays the same steps with ftlua's AdamW.

    .venv/bin/python tests/golden/make_adamw.py
"""
import json

import torch

torch.manual_seed(0)
params = {"w": torch.randn(3, 4), "layer_norm.weight": torch.randn(4)}
grads = [{k: torch.randn_like(v) * (10.0 if i == 2 else 1.0) for k, v in params.items()} for i in range(4)]
lr, wd, betas, eps = 1e-2, 0.1, (0.9, 0.98), 1e-8

tensors = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
optimizer = torch.optim.AdamW(
    [{"params": [tensors["w"]], "weight_decay": wd}, {"params": [tensors["layer_norm.weight"]], "weight_decay": 0.0}],
    lr=lr, betas=betas, eps=eps, foreach=False)
after = []
for step_grads in grads:
    for k, t in tensors.items():
        t.grad = step_grads[k].clone()
    optimizer.step()
    after.append({k: t.detach().flatten().tolist() for k, t in tensors.items()})

fixture = {
    "lr": lr, "weight_decay": wd, "beta1": betas[0], "beta2": betas[1], "eps": eps,
    "shapes": {k: list(v.shape) for k, v in params.items()},
    "initial": {k: v.flatten().tolist() for k, v in params.items()},
    "grads": [{k: g.flatten().tolist() for k, g in step.items()} for step in grads],
    "after": after,
}
with open("tests/golden/adamw.json", "w") as out:
    json.dump(fixture, out, indent=1)
