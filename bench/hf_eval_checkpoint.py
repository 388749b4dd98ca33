#!/usr/bin/env python3
"""Loads an ftlua checkpoint with HF transformers' T5ForConditionalGeneration.from_pretrained and
scores it on a JSONL split the way `ftlua eval` does (token-weighted eval loss, greedy exact match
and F1), so the two can be compared number for number.

    .venv/bin/python bench/hf_eval_checkpoint.py runs/adaptive/final bench/data/eval.jsonl
    target/release/ftlua eval runs/adaptive/final --input bench/data/eval.jsonl --max-source-len 384 --max-new-tokens 47
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_baseline import evaluate, load  # noqa: E402
from transformers import T5ForConditionalGeneration  # noqa: E402


def main():
    checkpoint, data = sys.argv[1], sys.argv[2]
    model = T5ForConditionalGeneration.from_pretrained(checkpoint)
    metrics = evaluate(model, load(data, 384, 48), 64, 47)
    print(json.dumps({"loss": metrics["eval_loss"], "exact_match": metrics["eval_exact_match"], "f1": metrics["eval_f1"]}))


if __name__ == "__main__":
    main()
