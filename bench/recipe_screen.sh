#!/usr/bin/env bash
# recipe_screen.sh — docs/quality.md's recipe table: fmnist-small variants trained at one equal CPU budget, each
# scored by bench/quality_curve.sh (500 samples, seed 1: DPM++2M-20, DDIM-50, DDPM-250 rows).
#   bench/recipe_screen.sh OUT_DIR [NAME...]      (all runs when no NAME; DDPM=build/ddpm by default)
# The budget: base = 2,000 steps x 64 images; the variants that cost more per image get the steps that cost the
# same time, from a 150-step probe side by side on the 2-core Zen 5 (bf16 images/s: base 298, deep 179, wide 91).
# A finished run (its last checkpoint exists) is not retrained; its rows are appended again to OUT/eval/NAME.
set -u
D=${1:?usage: bench/recipe_screen.sh OUT_DIR [NAME...]}; shift
here=$(cd "$(dirname "$0")/.." && pwd)
B=${DDPM:-$here/build/ddpm}; C=$here/configs/fmnist-small.toml
cd "$here"
run() {  # name steps config flags...
  local n=$1 s=$2 c=$3; shift 3
  if [ ! -s "$D/$n/checkpoint-$(printf %08d "$s").safetensors" ]; then
    echo "$(date +%T) train $n" >> "$D/queue.log"
    nice -n 10 "$B" train --config "$c" --precision bf16 --out "$D/$n" --steps "$s" --save-every "$s" --keep-checkpoints 2 \
      --sample-every 0 --threads 2 "$@" > "$D/$n.log" 2>&1 || { echo "train $n failed" >> "$D/queue.log"; return; }
  fi
  echo "$(date +%T) eval $n" >> "$D/queue.log"
  DDPM=$B FAST=$s DDIM=$s DDPM_ROWS=$s ENDS= EXTRA= nice -n 10 bash "$here/bench/quality_curve.sh" "$D/$n" "$D/eval/$n" 2>>"$D/queue.log"
}
declare -A RUNS=(
  [base]="2000 $C"
  [lrcos]="2000 $C --lr-schedule cosine"
  [minsnr]="2000 $C --loss-weight min_snr"
  [vcos]="2000 $C --prediction v --schedule cosine"
  [v]="2000 $C --prediction v"
  [ema995]="2000 $C --ema-decay 0.995"
  [b128]="1000 $C --batch-size 128"
  [deep]="1200 $D/deep.toml"
  [wide]="610 $D/wide.toml"
  [minsnr_vcos]="2000 $C --loss-weight min_snr --prediction v --schedule cosine"
)
ORDER=(base lrcos minsnr vcos v ema995 b128 deep wide minsnr_vcos)
[ $# -gt 0 ] && ORDER=("$@")
for n in "${ORDER[@]}"; do
  [ -n "${RUNS[$n]-}" ] || { echo "recipe_screen.sh: unknown run '$n' (known: ${!RUNS[*]})" >&2; exit 2; }
done
mkdir -p "$D"
sed -e 's/^ch = 32 .*/ch = 64/' "$C" > "$D/wide.toml"                   # width 64, 128, 128
sed -e 's/^num_res_blocks = 1 .*/num_res_blocks = 2/' "$C" > "$D/deep.toml"  # two ResBlocks per level
for n in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  run "$n" ${RUNS[$n]}
done
echo "$(date +%T) DONE" >> "$D/queue.log"
