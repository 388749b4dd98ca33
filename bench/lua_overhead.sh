#!/usr/bin/env bash
# Alternates training runs without and with a no-op Lua handler on every event (ROUNDS each) and
# prints the median time spent in optimizer steps for both, and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
ftlua=target/release/ftlua
for i in $(seq "$rounds"); do
  for hooks in 0 1; do
    HOOKS=$hooks "$ftlua" -q run bench/lua_overhead.lua --output-dir "$(mktemp -d)" 2>/dev/null | grep '^hooks='
  done
done | python3 -c '
import sys, statistics
runs = {"0": [], "1": []}
for line in sys.stdin:
    fields = dict(kv.split("=") for kv in line.split())
    runs[fields["hooks"]].append(float(fields["step_seconds"]))
without, with_ = statistics.median(runs["0"]), statistics.median(runs["1"])
n = len(runs["0"])
print(f"step time, median of {n}: no handlers {without:.3f}s, a no-op handler on every event {with_:.3f}s")
print(f"ratio {with_ / without:.4f} ({100 * (with_ / without - 1):+.2f}%)")
'
