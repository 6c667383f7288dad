#!/usr/bin/env bash
# distributed.sh — training throughput with 1 process and with N processes (`ddpm train --nproc N`, Gloo on
# loopback) for one preset; prints a JSON array, one object per configuration: global and per-rank images/s
# and rank 0's share of time spent waiting on communication, from the run's metrics.jsonl (the first window,
# which holds start-up, is left out).
#
#   bench/distributed.sh [PRESET] [BATCH] [STEPS] [NPROCS]
#   defaults: fmnist-small, 64, 60, "1 2"
# Environment: DDPM (binary, default build/ddpm), DATA (default fashion-mnist), OUT (default bench-out/distributed).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-fmnist-small}
batch=${2:-64}
steps=${3:-60}
nprocs=${4:-1 2}
bin=${DDPM:-build/ddpm}
out=${OUT:-bench-out/distributed}
cores=$(nproc)
rm -rf "$out"
mkdir -p "$out"
echo "["
first=1
for n in $nprocs; do
  threads=$(( cores / n > 0 ? cores / n : 1 ))
  dir="$out/np$n"
  args=(train --preset "$preset" --data "${DATA:-fashion-mnist}" --out "$dir" --steps "$steps" --batch-size "$batch"
        --log-every 10 --save-every 0 --sample-every 0 --sample-num 1 --threads "$threads")
  [ "$n" -gt 1 ] && args+=(--nproc "$n")
  "$bin" "${args[@]}" 2>"$dir.log"
  [ $first = 1 ] || echo ","
  first=0
  /usr/bin/python3 - "$dir/metrics.jsonl" "$n" "$threads" "$preset" "$batch" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])][1:]   # drop the first window (start-up)
n, threads = int(sys.argv[2]), int(sys.argv[3])
secs = sum(r["images_per_sec"] and 10 * int(sys.argv[5]) / r["images_per_sec"] for r in recs)
imgs = 10 * int(sys.argv[5]) * len(recs)
comm = sum(r.get("comm_s", 0.0) for r in recs)
print("  " + json.dumps({"preset": sys.argv[4], "global_batch": int(sys.argv[5]), "processes": n,
                         "threads_per_process": threads, "images_per_sec": round(imgs / secs, 2),
                         "images_per_sec_per_rank": round(imgs / secs / n, 2),
                         "comm_share": round(comm / secs, 3), "steps_measured": 10 * len(recs)}), end="")
PY
done
echo
echo "]"
