#!/usr/bin/env bash
# samplers.sh — time per image and NFE of every sampler at several step counts, for one checkpoint.
# Prints one JSON array (one object per run: the `ddpm sample` report plus the grid written).
#
#   bench/samplers.sh [CHECKPOINT] [NUM_IMAGES] [OUT_DIR]
#   defaults: models/fmnist-small.safetensors, 64 images, bench-out/samplers
# Environment: DDPM (binary, default build/ddpm), THREADS (default 0 = all cores), SEED (default 0),
# STEPS (default "10 20 50"), SAMPLERS (default "ddim dpm++2m dpm++3m euler heun edm-sde vp-sde pc"), DDPM_STEPS (default "1000 100").
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:-models/fmnist-small.safetensors}
num=${2:-64}
out=${3:-bench-out/samplers}
bin=${DDPM:-build/ddpm}
threads=${THREADS:-0}
seed=${SEED:-0}
mkdir -p "$out"
runs=()
for n in ${DDPM_STEPS:-1000 100}; do runs+=("ddpm $n"); done
for s in ${SAMPLERS:-ddim dpm++2m dpm++3m euler heun edm-sde vp-sde pc}; do
  for n in ${STEPS:-10 20 50}; do
    # Heun, edm-sde and pc (1 corrector step) spend 2·steps − 1 NFE: give them the steps that spend about n NFE.
    if [ "$s" = heun ] || [ "$s" = edm-sde ] || [ "$s" = pc ]; then runs+=("$s $(( (n + 1) / 2 ))"); else runs+=("$s $n"); fi
  done
done
echo "["
first=1
for r in "${runs[@]}"; do
  set -- $r
  grid="$out/${1//+/p}_$2.png"
  line=$("$bin" sample --checkpoint "$ckpt" --sampler "$1" --steps "$2" --num "$num" --seed "$seed" \
           --threads "$threads" --out "$grid" 2>/dev/null)
  [ $first = 1 ] || echo ","
  first=0
  printf '  %s' "$line"
done
echo
echo "]"
