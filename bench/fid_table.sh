#!/usr/bin/env bash
# fid_table.sh — the FID/KID-vs-NFE table of docs/evaluation.md: the real-data floor (training images against
# the test split) and a model's samples from every sampler at 10, 20 and 50 NFE and from DDPM at 1000 steps,
# each scored by `ddpm eval` against the Fashion-MNIST test split (10k images, the shipped classifier's
# features). Prints one JSON object per row (and appends them to OUT.jsonl).
# Usage: bench/fid_table.sh [MODEL] [N_FAST] [N_DDPM] [OUT]
#   N_FAST samples for each fast-sampler row (10000 in the issue; fewer on a CPU), N_DDPM for DDPM-1000.
# SECTIONS (default "floor fast sde ddpm") picks the rows: floor = the real-data floor; fast = the ODE samplers
# at 10, 20, 50 NFE; sde = the score-SDE samplers edm-sde, vp-sde and pc at ≈ 20, 50, 100 NFE (edm-sde and pc
# cost 2·steps − 1, so 19, 49, 99) and DDPM at 100 steps beside them, N_FAST samples each; ddpm = DDPM-1000.
# The figures of docs/samplers.md: SECTIONS=sde bench/fid_table.sh models/fmnist-small.safetensors 500 100 docs/fid-table-sde
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/fmnist-small.safetensors}
N_FAST=${2:-10000}
N_DDPM=${3:-$N_FAST}
OUT=${4:-docs/fid-table}
DDPM=${DDPM:-build/ddpm}
SECTIONS=" ${SECTIONS:-floor fast sde ddpm} "
has() { [[ "$SECTIONS" == *" $1 "* ]]; }
W=$(mktemp -d "${TMPDIR:-/tmp}/fid-table.XXXXXX")
trap 'rm -rf "$W"' EXIT
: >"$OUT.jsonl"
EVAL=(eval --ref fashion-mnist@test --metrics fid,kid,pr --kid-subset-size 1000 --kid-subsets 100)
row() {  # row LABEL NFE SAMPLES_SPEC SAMPLE_SECONDS
  local j
  j=$("$DDPM" "${EVAL[@]}" --samples "$3" 2>/dev/null)
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r={"row": sys.argv[2], "nfe": int(sys.argv[3]), "num": d["num_samples"], "fid": round(d["fid"], 3), "kid": round(d["kid"], 4), "kid_std": round(d["kid_std"], 4), "precision": round(d["precision"], 4), "recall": round(d["recall"], 4), "sample_seconds": float(sys.argv[4])}; print(json.dumps(r))' "$j" "$1" "$2" "$4" | tee -a "$OUT.jsonl"
}
# The real-data floor: the first N training images (train split) against the test split, at each sample count.
has floor && for n in $(printf '%s\n' 10000 "$N_FAST" "$N_DDPM" | sort -un); do
  /usr/bin/python3 - "$n" "$W/train_$n.npz" <<'PYEOF'
import gzip, sys, numpy as np
n, out = int(sys.argv[1]), sys.argv[2]
raw = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()
a = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28, 1)[:n]
np.savez(out, a)
PYEOF
  row "real data (train split)" 0 "$W/train_$n.npz" 0
done
sample() {  # sample LABEL NFE N SAMPLER_ARGS...
  local label=$1 nfe=$2 n=$3; shift 3
  "$DDPM" sample --checkpoint "$MODEL" --num "$n" --batch-size 250 --seed 1 --format npz --out "$W/s.npz" "$@" \
    >"$W/s.json" 2>/dev/null
  row "$label" "$nfe" "$W/s.npz" "$(/usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["seconds"], 1))' "$W/s.json")"
}
has fast && for nfe in 10 20 50; do
  sample "ddim (η = 0)" "$nfe" "$N_FAST" --sampler ddim --steps "$nfe"
  sample "dpm++2m" "$nfe" "$N_FAST" --sampler dpm++2m --steps "$nfe"
  sample "dpm++3m" "$nfe" "$N_FAST" --sampler dpm++3m --steps "$nfe"
  sample "euler" "$nfe" "$N_FAST" --sampler euler --steps "$nfe"
  hs=$(( (nfe + 1) / 2 ))  # Heun: 2·steps − 1 NFE -> 9, 19, 49
  sample "heun" $(( 2 * hs - 1 )) "$N_FAST" --sampler heun --steps "$hs"
done
has sde && for nfe in 20 50 100; do
  hs=$(( nfe / 2 ))  # 2·steps − 1 NFE -> 19, 49, 99
  sample "edm-sde" $(( 2 * hs - 1 )) "$N_FAST" --sampler edm-sde --steps "$hs"
  sample "vp-sde" "$nfe" "$N_FAST" --sampler vp-sde --steps "$nfe"
  sample "pc" $(( 2 * hs - 1 )) "$N_FAST" --sampler pc --steps "$hs"
  if [ "$nfe" = 100 ]; then sample "ddpm (100 steps)" 100 "$N_FAST" --sampler ddpm --steps 100; fi
done
if has ddpm; then sample "ddpm (1000 steps)" 1000 "$N_DDPM" --sampler ddpm --steps 1000; fi
