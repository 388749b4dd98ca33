#!/usr/bin/env python3
"""Time to quality, as MLPerf measures training: the main recipe (scripts/adaptive.lua: its model,
data split, optimizer, batch and cosine schedule fitted to the budget) trained by ftlua and by HF's
Seq2SeqTrainer (bench/hf_baseline.py: the same model config, split, optimizer settings, batch and
schedule length) for each wall-clock budget, then the held-out eval loss, exact match and F1, each
system scoring the same held-out questions the same way (greedy answers). ftlua runs first at each
budget: HF's run takes the model config and the schedule length (ftlua's final max_steps) from it.

    .venv/bin/pip install transformers accelerate
    cargo build --release && bin/ftlua run bench/export_split.lua
    .venv/bin/python bench/time_to_quality.py [--minutes 2 5 10]

ftlua runs without in-training evaluations or checkpoints (eval_every = save_every = 0), as the HF
run does, so both spend the budget training; each evaluates once at the end.
"""
import argparse
import json
import subprocess
import sys


def ftlua(minutes, out):
    subprocess.run(["target/release/ftlua", "-q", "run", "scripts/adaptive.lua", "--output-dir", out, "--set",
                    f"max_seconds={minutes * 60}", "--set", "eval_every=0", "--set", "save_every=0"], check=True)
    records = [json.loads(line) for line in open(f"{out}/metrics.jsonl")]
    evaluation = [r for r in records if r["event"] == "eval"][-1]
    logs = [r for r in records if r["event"] == "log"]
    state = json.load(open(f"{out}/trainer_state.json"))
    return {"steps": state["global_step"], "samples_per_second": logs[-1]["samples_per_second"],
            **{k: evaluation[k] for k in ("eval_loss", "eval_exact_match", "eval_f1")}}


def hf(minutes, ftlua_run, out):
    done = subprocess.run([sys.executable, "bench/hf_baseline.py", "--run", ftlua_run, "--minutes", str(minutes),
                           "--out", out], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[2, 5, 10])
    p.add_argument("--out", default="runs/time_to_quality")
    args = p.parse_args()
    held_out = sum(1 for line in open("bench/data/eval.jsonl") if line.strip())
    rows = []
    for minutes in args.minutes:
        run = f"{args.out}/ftlua-{minutes:g}min"
        results = {"ftlua": ftlua(minutes, run)}
        results["HF Seq2SeqTrainer"] = hf(minutes, run, f"{args.out}/hf-{minutes:g}min")
        for system, r in results.items():
            rows.append((minutes, system, r))
            print(json.dumps({"minutes": minutes, **r, "system": system}), flush=True)
    print("\n| budget | system | steps | samples/s | eval loss | exact match | F1 |")
    print("|---|---|---|---|---|---|---|")
    for minutes, system, r in rows:
        print(f"| {minutes:g} min | {system} | {r['steps']} | {r['samples_per_second']:.1f} | {r['eval_loss']:.4f} | "
              f"{r['eval_exact_match'] * held_out:.0f}/{held_out} | {r['eval_f1']:.4f} |")


if __name__ == "__main__":
    main()
