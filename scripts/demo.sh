#!/usr/bin/env bash
# demo.sh — the main job on a fresh Debian 12 machine: install, build, then
#   1. sample a grid of garments from the shipped Fashion-MNIST model (models/fmnist-small.safetensors);
#   2. train a short run from scratch on Fashion-MNIST and sample its grid, to see training work.
# Outputs go to demo/ (re-running continues the short run instead of overwriting it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
DDPM=build/ddpm
mkdir -p demo

echo "== 1/2: 64 garments from the shipped model (DDPM, 250 respaced steps) =="
$DDPM sample --checkpoint models/fmnist-small.safetensors --num 64 --steps 250 --seed 0 --scale 2 \
  --out demo/shipped_model_grid.png

echo "== 2/2: a short training run from scratch (fmnist-small, 400 steps of batch 32) =="
$DDPM train --config configs/fmnist-small.toml --out demo/run --steps 400 --batch-size 32 --warmup 100 \
  --sample-every 0 --save-every 200 --resume
$DDPM sample --checkpoint demo/run/checkpoint.safetensors --num 64 --steps 250 --seed 0 --scale 2 \
  --out demo/short_run_grid.png

echo
echo "demo: wrote demo/shipped_model_grid.png (trained model) and demo/short_run_grid.png (400-step run)"
