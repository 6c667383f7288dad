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
for s in 2000 5000 10000 20000 30000; do
  row $s dpm++2m-20 --sampler dpm++2m --steps 20
  row $s ddim-50 --sampler ddim --steps 50
done
for s in 30000 5000 10000 2000 20000; do row $s ddpm-250 --sampler ddpm --steps 250; done
# the ends of the schedule at the last checkpoint
row 30000 dpm++2m-20-noclip --sampler dpm++2m --steps 20 --no-clip
row 30000 ddim-50-trailing --sampler ddim --steps 50 --spacing trailing
row 30000 dpm++2m-20-karras --sampler dpm++2m --steps 20 --spacing karras
row 30000 ddim-50-eta1 --sampler ddim --steps 50 --eta 1
row 30000 edm-sde-49 --sampler edm-sde --steps 25
for s in 1000 3000 15000 25000; do row $s dpm++2m-20 --sampler dpm++2m --steps 20; done
echo DONE >&2
