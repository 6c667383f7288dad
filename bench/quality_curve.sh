#!/usr/bin/env bash
# quality_curve.sh — FID along training of a run directory saved every 1000 steps (docs/quality.md): 500 samples per row, seed 1,
# in-tree classifier FID/KID against the 10k test split. Appends JSON rows to curve.jsonl.
set -u
B=${DDPM:-build/ddpm}
R=${1:?usage: bench/quality_curve.sh RUN_DIR [OUT_DIR]}
O=${2:-bench-out/quality-curve}; mkdir -p "$O"
row() {  # step label args...
  local step=$1 label=$2; shift 2
  local ck=$R/checkpoint-$(printf %08d $step).safetensors
  local t0=$(date +%s.%N)
  $B sample --checkpoint $ck --num 500 --seed 1 --batch-size 250 --format npz --out $O/s.npz --precision bf16 --threads 2 "$@" > $O/sample.json 2>/dev/null || { echo "sample failed $step $label" >&2; return; }
  local t1=$(date +%s.%N)
  $B eval --samples $O/s.npz --ref fashion-mnist@test --metrics fid,kid,pr --threads 2 > $O/eval.json 2>/dev/null || { echo "eval failed" >&2; return; }
  python3 -c "
import json,sys
e=json.load(open('$O/eval.json')); s=json.load(open('$O/sample.json'))
print(json.dumps({'step':$step,'row':'$label','nfe':s.get('nfe'),'num':500,'fid':round(e['fid'],3),'kid':round(e['kid'],4),'precision':e.get('precision'),'recall':e.get('recall'),'sample_seconds':round($t1-$t0,1)}))" >> $O/curve.jsonl
}
# Which checkpoints get which rows (defaults: docs/quality.md's UNet run; docs/dit.md's DiT run sets them, e.g.
# FAST="1000 2000 3000 4000 5000 6000 7000 8000" DDIM="2000 4000 8000" DDPM_ROWS="8000 4000 2000" ENDS= EXTRA=).
FAST=${FAST-"2000 5000 10000 20000 30000"}      # DPM-Solver++(2M) 20 NFE
DDIM=${DDIM-$FAST}                              # DDIM 50
DDPM_ROWS=${DDPM_ROWS-"30000 5000 10000 2000 20000"}  # DDPM ancestral 250
ENDS=${ENDS-30000}                              # the ends-of-the-schedule variants, at this step ("" = none)
EXTRA=${EXTRA-"1000 3000 15000 25000"}          # more DPM++2M-20 rows, last
RAW=${RAW-}                                     # DPM++2M-20 from the training weights instead of the EMA
wait_for() {  # a checkpoint of a run still training: wait until it exists
  local ck=$R/checkpoint-$(printf %08d $1).safetensors
  while [ ! -s "$ck" ]; do sleep 20; done
}
for s in $FAST; do wait_for $s; row $s dpm++2m-20 --sampler dpm++2m --steps 20; done
for s in $DDIM; do wait_for $s; row $s ddim-50 --sampler ddim --steps 50; done
for s in $DDPM_ROWS; do wait_for $s; row $s ddpm-250 --sampler ddpm --steps 250; done
if [ -n "$ENDS" ]; then
  # the ends of the schedule at the last checkpoint
  row $ENDS dpm++2m-20-noclip --sampler dpm++2m --steps 20 --no-clip
  row $ENDS ddim-50-trailing --sampler ddim --steps 50 --spacing trailing
  row $ENDS dpm++2m-20-karras --sampler dpm++2m --steps 20 --spacing karras
  row $ENDS ddim-50-eta1 --sampler ddim --steps 50 --eta 1
  row $ENDS edm-sde-49 --sampler edm-sde --steps 25
fi
for s in $EXTRA; do row $s dpm++2m-20 --sampler dpm++2m --steps 20; done
for s in $RAW; do wait_for $s; row $s dpm++2m-20-raw --sampler dpm++2m --steps 20 --weights raw; done
echo DONE >&2
