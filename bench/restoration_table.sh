#!/usr/bin/env bash
# restoration_table.sh — the table of docs/restoration.md: every restoration method on the first N Fashion-MNIST
# test images, next to its classical baseline. Per row: PSNR of one result (mean ± s.e. over images), of the
# mean of K results where K > 1 (the posterior-mean estimate), on the missing region alone for inpainting, the
# baseline's PSNR, and the in-tree FID (the shipped classifier's features, ref = the 10k test split) of the
# restored set and of the baseline's set; seconds per result and NFE. Prints one JSON object per row and writes
# them to OUT.jsonl; the grids of the first 8 inputs go to bench-out/restoration/.
# Usage: bench/restoration_table.sh [MODEL] [N] [K] [OUT]
#   N inputs per row (FID rests on N results), K results per input for the posterior-mean rows (on the first
#   NK = min(N, 100) inputs unless NK is set). PRECISION=bf16 on CPUs with native bf16 (the same FIDs,
#   docs/precision.md), THREADS=2, ROWS=REGEX runs only the rows whose label matches.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/fmnist-small.safetensors}
N=${2:-500}
K=${3:-4}
OUT=${4:-docs/restoration-table}
DDPM=${DDPM:-build/ddpm}
PRECISION=${PRECISION:-fp32}
THREADS=${THREADS:-2}
PICS=bench-out/restoration
mkdir -p "$PICS"
W=$(mktemp -d "${TMPDIR:-/tmp}/restoration-table.XXXXXX")
trap 'rm -rf "$W"' EXIT
: >"$OUT.jsonl"
NK=${NK:-$(( N < 100 ? N : 100 ))}
COMMON=(--checkpoint "$MODEL" --data fashion-mnist@test --threads "$THREADS" --precision "$PRECISION" --seed 1)
fid() { "$DDPM" eval --ref fashion-mnist@test --metrics fid --samples "$1" 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["fid"], 2))'; }

# The floor: the ground-truth images themselves (test images 0..N−1) against the test split.
/usr/bin/python3 - "$N" "$W/truth.npz" <<'PYEOF'
import gzip, sys, numpy as np
n, out = int(sys.argv[1]), sys.argv[2]
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
np.savez(out, np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28, 1)[:n])
PYEOF
echo "{\"row\": \"ground truth (test images 0..$((N - 1)))\", \"num\": $N, \"fid\": $(fid "$W/truth.npz")}" | tee -a "$OUT.jsonl"

row() {  # row LABEL VERB ARGS... : N inputs × 1 result (FID, PSNR) and, with K > 1, NK inputs × K results (PSNR of the mean)
  local label=$1 verb=$2; shift 2
  if [ -n "${ROWS:-}" ] && ! [[ "$label" =~ $ROWS ]]; then return; fi
  local base=() fr fb=null mean_json="{}"
  [ "$verb" != edit ] && base=(--baseline-out "$W/b.npz")  # SDEdit has no baseline: its guides are the truth
  "$DDPM" "$verb" "${COMMON[@]}" --index "0:$N" --num 1 --format npz --out "$W/r.npz" "${base[@]}" \
    --json "$W/r.json" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
  fr=$(fid "$W/r.npz")
  [ "$verb" != edit ] && fb=$(fid "$W/b.npz")
  if [ "$K" -gt 1 ] && [ "$verb" != edit ]; then
    "$DDPM" "$verb" "${COMMON[@]}" --index "0:$NK" --num "$K" --out "$PICS/${label// /_}.png" --json "$W/k.json" "$@" \
      >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
    mean_json=$(cat "$W/k.json")
  else
    "$DDPM" "$verb" "${COMMON[@]}" --index "0:8" --num 1 --out "$PICS/${label// /_}.png" "$@" >/dev/null 2>&1
  fi
  /usr/bin/python3 - "$label" "$W/r.json" "$mean_json" "$fr" "$fb" "$K" <<'PYEOF' | tee -a "$OUT.jsonl"
import json, sys
label, rj, mj, fr, fb, k = sys.argv[1], json.load(open(sys.argv[2])), json.loads(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), int(sys.argv[6])
r = {"row": label, "num": rj["results"], "nfe": rj["nfe"], "seconds_per_result": round(rj["seconds_per_image"], 4),
     "fid": fr, "fid_baseline": fb}
for key in ("psnr", "psnr_se", "psnr_missing", "psnr_missing_se", "psnr_baseline", "psnr_baseline_se",
            "psnr_baseline_missing", "psnr_baseline_missing_se", "psnr_guide", "psnr_guide_se", "baseline_blur_px"):
    if key in rj: r[key] = round(rj[key], 3) if isinstance(rj[key], float) else rj[key]
if mj:
    r["k"] = k
    r["num_posterior_mean"] = mj["inputs"]
    for key in ("psnr_posterior_mean", "psnr_posterior_mean_se", "psnr_posterior_mean_missing"):
        if key in mj: r[key] = round(mj[key], 3)
    # one result and the baseline on the same NK inputs, to compare with the mean of K
    for key in ("psnr", "psnr_se", "psnr_baseline", "psnr_baseline_se"):
        if key in mj: r["k_inputs_" + key] = round(mj[key], 3)
print(json.dumps(r))
PYEOF
}

for shape in center left random:0.5; do
  row "inpaint $shape replace" inpaint --mask-shape "$shape" --method replace
  row "inpaint $shape repaint" inpaint --mask-shape "$shape" --method repaint
  row "inpaint $shape ddnm" inpaint --mask-shape "$shape" --method ddnm
done
for f in 2 4; do
  row "upscale x$f ddnm" upscale --factor "$f" --method ddnm
  row "upscale x$f ilvr" upscale --factor "$f" --method ilvr
done
for s in 0.1 0.2 0.4; do
  row "denoise sigma $s" denoise --add-noise "$s"
done
for st in 0.3 0.5 0.7 0.9; do
  row "edit strength $st" edit --strength "$st"
done
