#!/usr/bin/env bash
# compare_cpu.sh — ddpm.cpp vs PyTorch eager (Debian's python3-torch, same LibTorch 1.13) on this machine:
# the same preset, batch and thread count, training and sampling, alternating the two ROUNDS times so that
# machine noise hits both alike. Prints every run as JSON, then one JSON summary of medians and ratios.
# Usage: bench/compare_cpu.sh [PRESET] [BATCH] [ROUNDS]     (needs: apt-get install python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${1:-fmnist}; BATCH=${2:-64}; ROUNDS=${3:-3}
DDPM=${DDPM:-build/ddpm}
PY=/usr/bin/python3
out=$(mktemp)
for r in $(seq "$ROUNDS"); do
  for mode in train sample; do
    iters=$([ $mode = train ] && echo 5 || echo 10)
    $DDPM bench --preset "$PRESET" --mode $mode --batch-size "$BATCH" --iters $iters --warmup 2 | sed 's/^{/{"impl":"ddpm.cpp",/' | tee -a "$out"
    $PY bench/torch_reference.py --preset "$PRESET" --mode $mode --batch-size "$BATCH" --iters $iters --warmup 2 | tee -a "$out"
  done
done
$PY - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(impl, mode):
    key = "images_per_sec" if mode == "train" else "image_nfe_per_sec"
    return statistics.median(r[key] for r in runs if r["impl"] == impl and r["mode"] == mode)
s = {"preset": runs[0]["preset"], "batch_size": runs[0]["batch_size"], "threads": runs[0]["threads"], "rounds": len(runs) // 4}
for mode in ("train", "sample"):
    ours, ref = med("ddpm.cpp", mode), med("pytorch-eager", mode)
    s[mode] = {"ddpm_cpp": round(ours, 2), "pytorch_eager": round(ref, 2), "ratio": round(ours / ref, 3)}
print(json.dumps(s))
PY
rm -f "$out"
