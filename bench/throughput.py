#!/usr/bin/env python3
"""Training throughput side by side: ftlua, ftlua with a no-op Lua handler on every event, HF's
Seq2SeqTrainer and a bare PyTorch loop train the same T5 (bench/configs/*.json, copied from the
project's benchmark configurations) on the same data with the same batch, steps and optimizer; runs
alternate between systems, ROUNDS times, and the table gives medians and ratios.

    .venv/bin/pip install transformers accelerate      # the peers (not needed by ftlua or its tests)
    cargo build --release && .venv/bin/python bench/throughput.py [--rounds 4]

Measured per run: steps/s and samples/s after the warm-up steps (from per-step wall-clock stamps:
metrics.jsonl's "time" for ftlua, a step-end callback or the loop for the peers), time from launch to
the end of the first optimizer step (process start, imports, data, model, first step), peak RSS of
the process (wait4's ru_maxrss), and for ftlua the share of step time spent waiting for batches.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    # name: (config file, steps, batch, warm-up steps excluded from the rate)
    "compute-bound (t5_bench_config: d_model 256, 4+4 layers, source 256)": ("bench/configs/t5_bench_config.json", 20, 16, 4),
    "overhead (t5_small_overhead_config: d_model 64, 2+2 layers, source 128)": ("bench/configs/t5_small_overhead_config.json", 150, 8, 20),
}
SYSTEMS = ["ftlua", "ftlua + Lua hooks", "HF Seq2SeqTrainer", "bare PyTorch"]


def run(system, config, steps, batch):
    env = dict(os.environ, BENCH_CONFIG=config, BENCH_STEPS=str(steps), BENCH_BATCH=str(batch))
    out_dir = tempfile.mkdtemp(prefix="ftlua-bench-")
    if system.startswith("ftlua"):
        env["HOOKS"] = "1" if "hooks" in system else "0"
        cmd = ["target/release/ftlua", "-q", "run", "bench/throughput.lua", "--device", "cpu", "--output-dir", out_dir]
    else:
        kind = "hf" if system.startswith("HF") else "torch"
        cmd = [sys.executable, "bench/peers.py", "--system", kind, "--config", config, "--steps", str(steps),
               "--batch", str(batch)]
    launched = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{system} failed ({status}):\n{err[-3000:]}")
    if system.startswith("ftlua"):
        logs = [r for r in map(json.loads, open(f"{out_dir}/metrics.jsonl")) if r["event"] == "log"]
        times = [r["time"] for r in logs]
        wait = statistics.median(r["data_wait_percent"] for r in logs[1:])
    else:
        times = json.loads(out.strip().splitlines()[-1])["step_times"]
        wait = None
    return {"times": times, "first_step": times[0] - launched, "rss": usage.ru_maxrss * 1024, "wait": wait}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    print(f"{os.cpu_count()} CPUs, {args.rounds} rounds, systems alternating (a different one first each round)\n")
    for name, (config, steps, batch, warmup) in CONFIGS.items():
        results = {s: [] for s in SYSTEMS}
        for round_index in range(args.rounds):
            # A different system goes first in each round, so that an effect of position (a warm
            # page cache, a machine still busy with the last run) does not favour one system.
            shift = round_index % len(SYSTEMS)
            for system in SYSTEMS[shift:] + SYSTEMS[:shift]:
                results[system].append(run(system, config, steps, batch))
        rate = {}
        for system, runs in results.items():
            rates = [(len(r["times"]) - warmup - 1) / (r["times"][-1] - r["times"][warmup]) for r in runs]
            rate[system] = statistics.median(rates)
        print(f"### {name}: batch {batch}, {steps} steps ({warmup} warm-up)\n")
        print("| system | steps/s | samples/s | vs HF | vs bare PyTorch | launch → first step | peak RSS | data wait |")
        print("|---|---|---|---|---|---|---|---|")
        for system, runs in results.items():
            first = statistics.median(r["first_step"] for r in runs)
            rss = statistics.median(r["rss"] for r in runs) / 2**20
            waits = [r["wait"] for r in runs if r["wait"] is not None]
            wait = f"{statistics.median(waits):.3f}%" if waits else "-"
            print(f"| {system} | {rate[system]:.2f} | {rate[system] * batch:.1f} | "
                  f"{rate[system] / rate['HF Seq2SeqTrainer']:.2f}× | {rate[system] / rate['bare PyTorch']:.2f}× | "
                  f"{first:.2f} s | {rss:.0f} MiB | {wait} |")
        overhead = rate["ftlua"] / rate["ftlua + Lua hooks"] - 1
        print(f"\nLua hooks on every event: step rate {100 * overhead:+.2f}% slower than without\n", flush=True)


if __name__ == "__main__":
    main()
