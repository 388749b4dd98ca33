#!/usr/bin/env python3
"""Data-parallel scaling on this machine: the compute-bound benchmark configuration trained by one
ftlua process (batch 16) and by two launched with torchrun (batch 8 each, so the same effective
batch and the same steps), alternating, ROUNDS times; reports median steps/s and the ratio.

    cargo build --release && .venv/bin/python bench/ddp_scaling.py [--rounds 3]

On a machine with C cores, one process uses C threads for its kernels and each of N processes C/N
(torchrun sets OMP_NUM_THREADS=1 when N > 1), so the ratio measures what splitting the batch across
processes gains or costs over splitting each kernel across threads, including the gradient all-reduce.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CONFIG, STEPS, BATCH, WARMUP = "bench/configs/t5_bench_config.json", 20, 16, 4


def steps_per_second(processes):
    out_dir = tempfile.mkdtemp(prefix="ftlua-ddp-")
    env = dict(os.environ, BENCH_CONFIG=CONFIG, BENCH_STEPS=str(STEPS), BENCH_BATCH=str(BATCH // processes), HOOKS="0")
    ftlua = ["target/release/ftlua", "-q", "run", "bench/throughput.lua", "--device", "cpu", "--output-dir", out_dir]
    if processes > 1:
        torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
        ftlua = [torchrun, "--no-python", f"--nproc_per_node={processes}", "--master_port=29611"] + ftlua
    done = subprocess.run(ftlua, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{processes} process(es) failed:\n{done.stderr[-3000:]}")
    times = [r["time"] for r in map(json.loads, open(f"{out_dir}/metrics.jsonl")) if r["event"] == "log"]
    return (len(times) - WARMUP - 1) / (times[-1] - times[WARMUP])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    rates = {1: [], 2: []}
    for round_index in range(args.rounds):
        for processes in ([1, 2] if round_index % 2 == 0 else [2, 1]):
            rates[processes].append(steps_per_second(processes))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"{os.cpu_count()} CPUs, {args.rounds} rounds; {CONFIG}, effective batch {BATCH}, {STEPS} steps ({WARMUP} warm-up)")
    print(f"1 process  × batch {BATCH}: {one:.3f} steps/s  (runs: {', '.join(f'{r:.3f}' for r in rates[1])})")
    print(f"2 processes × batch {BATCH // 2}: {two:.3f} steps/s  (runs: {', '.join(f'{r:.3f}' for r in rates[2])})")
    print(f"2 processes / 1 process: {two / one:.2f}×")


if __name__ == "__main__":
    main()
