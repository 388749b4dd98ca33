#!/usr/bin/env python3
"""The HF peer of an ftlua run: trains the same T5 (config from the run's run.json) on the same
train/eval split (bench/export_split.lua) with HF transformers' Seq2SeqTrainer, the same optimizer
settings and wall-clock budget, then reports held-out exact match measured the way ftlua does
(greedy generation, answer equal after trimming whitespace).

    bin/ftlua run bench/export_split.lua
    .venv/bin/python bench/hf_baseline.py --run runs/adaptive --minutes 10 [--max-steps N] [--lr X] [--batch B]

Tokenization is ByT5's byte scheme (byte b -> id b + 3, EOS 1, pad 0), as in ftlua.
"""
import argparse
import json
import time

import torch
from transformers import (Seq2SeqTrainer, Seq2SeqTrainingArguments, T5Config, T5ForConditionalGeneration,
                          TrainerCallback)

PAD, EOS, OFFSET, IGNORE = 0, 1, 3, -100


def encode(text, max_len):
    return [b + OFFSET for b in text.encode("utf-8")][: max_len - 1] + [EOS]


def decode(ids):
    return bytes(i - OFFSET for i in ids if OFFSET <= i < OFFSET + 256).decode("utf-8", errors="replace")


def load(path, max_source, max_target):
    samples = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return [{"input_ids": encode(f"question: {s['question']} context: {s['context']}", max_source),
             "labels": encode(s["answer"], max_target), "answer": s["answer"]} for s in samples]


def collate(batch):
    src = max(len(b["input_ids"]) for b in batch)
    tgt = max(len(b["labels"]) for b in batch)
    return {
        "input_ids": torch.tensor([b["input_ids"] + [PAD] * (src - len(b["input_ids"])) for b in batch]),
        "attention_mask": torch.tensor([[1] * len(b["input_ids"]) + [0] * (src - len(b["input_ids"])) for b in batch]),
        "labels": torch.tensor([b["labels"] + [IGNORE] * (tgt - len(b["labels"])) for b in batch]),
    }


class TimeBudget(TrainerCallback):
    def __init__(self, seconds):
        self.seconds, self.start = seconds, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if time.time() - self.start >= self.seconds:
            control.should_training_stop = True


def token_f1(prediction, reference):
    """ftlua's F1: whitespace tokens, or characters when either side is a single token."""
    def split(s):
        words = s.split()
        return list(s.strip()) if len(words) <= 1 else words
    pred, ref = split(prediction), split(reference)
    if not pred or not ref:
        return float(not pred and not ref)
    counts = {}
    for t in ref:
        counts[t] = counts.get(t, 0) + 1
    common = 0
    for t in pred:
        if counts.get(t, 0) > 0:
            counts[t] -= 1
            common += 1
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


@torch.no_grad()
def evaluate(model, samples, batch_size, max_new_tokens):
    """Eval loss (token-weighted mean, as ftlua), exact match and F1 of greedy answers."""
    model.eval()
    hits, f1, loss_sum, tokens = 0, 0.0, 0.0, 0
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        batch = collate(chunk)
        n = (batch["labels"] != IGNORE).sum().item()
        loss_sum += model(**batch).loss.item() * n
        tokens += n
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        for ids, s in zip(out.tolist(), chunk):
            ids = ids[1:]  # decoder start token
            ids = ids[:ids.index(EOS)] if EOS in ids else ids
            prediction = decode(ids)
            hits += prediction.strip() == s["answer"].strip()
            f1 += token_f1(prediction, s["answer"])
    return {"eval_loss": loss_sum / tokens, "eval_exact_match": hits / len(samples), "eval_f1": f1 / len(samples)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="an ftlua run directory (its run.json gives model and settings)")
    p.add_argument("--train", default="bench/data/train.jsonl")
    p.add_argument("--eval", default="bench/data/eval.jsonl")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--max-steps", type=int, help="schedule length (default: the run's final max_steps)")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--scheduler", default="cosine_with_min_lr")
    p.add_argument("--out", default="runs/hf_baseline")
    args = p.parse_args()

    run = json.load(open(f"{args.run}/run.json"))
    settings, model_config = run["settings"], dict(run["model"])
    max_steps = args.max_steps or json.load(open(f"{args.run}/trainer_state.json"))["max_steps"]
    train = load(args.train, 384, 48)
    evals = load(args.eval, 384, 48)
    torch.manual_seed(settings["seed"])
    model = T5ForConditionalGeneration(T5Config(**model_config))
    kwargs = {"min_lr_rate": 0.05} if args.scheduler == "cosine_with_min_lr" else {}
    targs = Seq2SeqTrainingArguments(
        output_dir=args.out, use_cpu=True, report_to="none", save_strategy="no", eval_strategy="no",
        learning_rate=args.lr or settings["learning_rate"], weight_decay=settings["weight_decay"],
        per_device_train_batch_size=args.batch or settings["batch_size"],
        gradient_accumulation_steps=settings["grad_accum"], max_grad_norm=settings["max_grad_norm"],
        adam_beta1=settings["adam_beta1"], adam_beta2=settings["adam_beta2"], adam_epsilon=settings["adam_epsilon"],
        warmup_steps=args.warmup if args.warmup is not None else settings["warmup_steps"],
        lr_scheduler_type=args.scheduler, lr_scheduler_kwargs=kwargs, max_steps=max_steps,
        logging_steps=50, seed=settings["seed"], dataloader_num_workers=0, remove_unused_columns=False,
    )
    trainer = Seq2SeqTrainer(model=model, args=targs, train_dataset=train, data_collator=collate,
                             callbacks=[TimeBudget(args.minutes * 60)])
    started = time.time()
    result = trainer.train()
    train_seconds = time.time() - started
    metrics = evaluate(model, evals, settings["eval_batch_size"], 48)
    report = {"system": "hf_seq2seq_trainer", "steps": result.global_step, "train_seconds": round(train_seconds, 1),
              "samples_per_second": round(result.global_step * targs.per_device_train_batch_size
                                          * targs.gradient_accumulation_steps / train_seconds, 1),
              "train_loss": result.training_loss, **metrics, "max_steps": max_steps,
              "learning_rate": targs.learning_rate, "batch_size": targs.per_device_train_batch_size,
              "scheduler": args.scheduler}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
