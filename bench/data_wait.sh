#!/usr/bin/env bash
# How long the training step waits for its batches: runs the main recipe (scripts/adaptive.lua)
# for STEPS optimizer steps (default 200), with and without length grouping, and prints the share
# of step time spent waiting for data per log interval, and in steady state (after the first
# interval, which includes the first, unprefetched step).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-200}
for grouped in false true; do
  dir=$(mktemp -d)
  target/release/ftlua -q run scripts/adaptive.lua --set max_steps="$steps" --set eval_every=0 \
    --set save_every=0 --set group_by_length="$grouped" --output-dir "$dir" >/dev/null 2>&1
  python3 - "$dir/metrics.jsonl" "$grouped" <<'PY'
import json, statistics, sys
logs = [r for r in map(json.loads, open(sys.argv[1])) if r["event"] == "log"]
waits = [r["data_wait_percent"] for r in logs]
steady = waits[1:] or waits
print(f"group_by_length={sys.argv[2]}: data wait per {logs[0]['step']}-step interval, % of step time: "
      f"first {waits[0]:.3f}, steady-state median {statistics.median(steady):.3f}, max {max(steady):.3f} "
      f"({len(waits)} intervals, {logs[-1]['samples_per_second']:.1f} samples/s)")
PY
  rm -rf "$dir"
done
