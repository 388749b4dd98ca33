#!/usr/bin/env python3
"""The peers of bench/throughput.lua: the same T5 (HF transformers' T5ForConditionalGeneration built
from the same config), data, batch, steps and optimizer (AdamW, lr 1e-3, weight decay 0.01 except
biases and layer norms, clipping at 1.0), trained either by HF's Seq2SeqTrainer or by a bare PyTorch
loop. Prints one JSON line: the wall-clock time at the end of each optimizer step.

    .venv/bin/python bench/peers.py --system hf|torch --config bench/configs/t5_bench_config.json --steps 20 --batch 16
"""
import argparse
import json
import os
import sys
import time

import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, T5Config, T5ForConditionalGeneration, TrainerCallback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_baseline import collate, load  # noqa: E402  (the byte tokenization and padding the HF baseline uses)


class StepTimes(TrainerCallback):
    def __init__(self):
        self.times = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.time())


def hf(model, data, steps, batch):
    targs = Seq2SeqTrainingArguments(
        output_dir="/tmp/ftlua-bench-hf", use_cpu=True, report_to="none", save_strategy="no", eval_strategy="no",
        learning_rate=1e-3, weight_decay=0.01, per_device_train_batch_size=batch, max_steps=steps,
        max_grad_norm=1.0, lr_scheduler_type="constant", logging_steps=1000, seed=42, dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=True)
    timer = StepTimes()
    Seq2SeqTrainer(model=model, args=targs, train_dataset=data, data_collator=collate, callbacks=[timer]).train()
    return timer.times


def bare(model, data, steps, batch):
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "layer_norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "layer_norm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-3)
    model.train()
    times = []
    for step in range(steps):
        chunk = [data[(step * batch + i) % len(data)] for i in range(batch)]
        loss = model(**collate(chunk)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.time())
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", choices=["hf", "torch"], required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    args = p.parse_args()
    config = json.load(open(args.config))
    source_len, target_len = config.pop("max_source_len"), config.pop("max_target_len")
    data = load("examples/data/invoices.jsonl", source_len, target_len)
    torch.manual_seed(42)
    model = T5ForConditionalGeneration(T5Config(**config))
    times = (hf if args.system == "hf" else bare)(model, data, args.steps, args.batch)
    print(json.dumps({"step_times": times}))


if __name__ == "__main__":
    main()
