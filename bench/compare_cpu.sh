#!/usr/bin/env bash
# compare_cpu.sh — ddpm.cpp vs PyTorch eager (Debian's python3-torch, same LibTorch 1.13) on this machine, the
# same preset, batch and threads, training and sampling. Configurations: ours in fp32 and bf16 (bf16 only where
# the CPU has it natively: `ddpm --version`); PyTorch fp32, fp32 channels-last, bf16 autocast, bf16 autocast
# channels-last. Every configuration runs once per round, in turn, for ROUNDS rounds, so that machine noise
# hits all alike. Prints every run as JSON, then one JSON summary: medians, GFLOP/s, and each of ours against
# the best PyTorch configuration of the task.
# BASE=path/to/an/older/ddpm adds that build (fp32) to the rotation, to measure a change side by side.
# Usage: bench/compare_cpu.sh [PRESET] [BATCH] [ROUNDS]     (needs: apt-get install python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${1:-fmnist}; BATCH=${2:-64}; ROUNDS=${3:-3}
DDPM=${DDPM:-build/ddpm}
PY=/usr/bin/python3
out=$(mktemp)
ours=(fp32)
$DDPM --version | grep -q "bf16 native" && ours+=(bf16)
# Where ours uses Winograd convolutions (fp32 training: oneDNN's; bf16 training and sampling: ours, on AVX-512
# BF16 without AMX), also ours with the direct ones (DDPM_WINOGRAD=0), to show what Winograd adds on this CPU.
wino=0 wino_bf16=0
$DDPM --version | grep -q "oneDNN Winograd" && wino=1
$DDPM --version | grep -q "bf16 3x3 convolutions: Winograd" && wino_bf16=1
for r in $(seq "$ROUNDS"); do
  for mode in train sample; do
    iters=$([ $mode = train ] && echo 4 || echo 8)
    if [ -n "${BASE:-}" ]; then
      $BASE bench --preset "$PRESET" --mode $mode --batch-size "$BATCH" --iters $iters --warmup 2 |
        sed 's/^{/{"impl":"base","precision":"fp32","layout":"nchw",/' | tee -a "$out"
    fi
    for p in "${ours[@]}"; do
      $DDPM bench --preset "$PRESET" --mode $mode --batch-size "$BATCH" --iters $iters --warmup 2 --precision "$p" |
        sed 's/^{/{"impl":"ddpm.cpp",/' | tee -a "$out"
    done
    for p in "${ours[@]}"; do
      if { [ $p = fp32 ] && [ $wino = 1 ] && [ $mode = train ]; } || { [ $p = bf16 ] && [ $wino_bf16 = 1 ]; }; then
        DDPM_WINOGRAD=0 $DDPM bench --preset "$PRESET" --mode $mode --batch-size "$BATCH" --iters $iters --warmup 2 \
          --precision $p | sed 's/^{/{"impl":"ddpm.cpp",/' | tee -a "$out"
      fi
    done
    for p in fp32 bf16; do
      for cl in "" --channels-last; do
        $PY bench/torch_reference.py --preset "$PRESET" --mode $mode --batch-size "$BATCH" --iters $iters --warmup 2 \
          --precision $p $cl | tee -a "$out"
      done
    done
  done
done
$PY - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
key = {"train": "images_per_sec", "sample": "image_nfe_per_sec"}
s = {"preset": runs[0]["preset"], "batch_size": runs[0]["batch_size"], "threads": runs[0]["threads"],
     "cpu": next((r["cpu"] for r in runs if "cpu" in r), ""), "isa": next((r["isa"] for r in runs if "isa" in r), "")}
for mode in ("train", "sample"):
    groups = {}
    for r in runs:
        if r["mode"] == mode:
            impl = r["impl"] if r["impl"] in ("ddpm.cpp", "base") else "pytorch"
            name = f"{impl} {r['precision']} {r['layout']}"
            if impl == "ddpm.cpp" and mode == "train" and r["precision"] == "fp32" and "fp32_train_conv3x3" in r:
                name += " " + r["fp32_train_conv3x3"]
            if impl == "ddpm.cpp" and r["precision"] == "bf16" and "bf16_conv3x3" in r:
                name += " " + r["bf16_conv3x3"]
            groups.setdefault(name, []).append(r)
    med = {n: statistics.median(r[key[mode]] for r in g) for n, g in groups.items()}
    # GFLOP/s of every configuration from ddpm's analytic FLOP count of the same network.
    r0 = next(r for r in runs if r["mode"] == mode and r["impl"] == "ddpm.cpp")
    flops_per_item = r0["gflops_per_sec"] / r0[key[mode]]
    gf = {n: v * flops_per_item for n, v in med.items()}
    best = max((n for n in med if n.startswith("pytorch")), key=med.get)
    s[mode] = {"median": {n: round(v, 2) for n, v in med.items()}, "gflops_per_sec": {n: round(v, 1) for n, v in gf.items()},
               "best_pytorch": best,
               "ratio_to_best_pytorch": {n: round(v / med[best], 3) for n, v in med.items() if not n.startswith("pytorch")},
               "rounds": len(groups[best])}
    bases = [n for n in med if n.startswith("base")]
    if bases:
        s[mode]["ratio_to_base_fp32"] = {n: round(v / med[bases[0]], 3) for n, v in med.items() if n.startswith("ddpm")}
print(json.dumps(s))
PY
rm -f "$out"
