#!/usr/bin/env bash
# precision_numerics.sh — bf16 against fp32, the figures of docs/precision.md:
#  1. training: STEPS steps of configs/fmnist-small.toml from the same seed in fp32 and in bf16; the loss curves
#     (log every 10 steps) smoothed by a moving average of 10 points, their mean relative difference, and an SVG
#     plot of both (docs/precision-loss.svg);
#  2. sampling: N images (dpm++2m, 20 NFE) from MODEL in fp32 and bf16 with the same seed — mean absolute pixel
#     difference — and the in-tree FID of each against the test split, next to a second fp32 set with another
#     seed (the run-to-run noise of fp32).
# Prints one JSON object. Usage: bench/precision_numerics.sh [STEPS] [N] [MODEL]   (needs native bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-2000}; N=${2:-10000}; MODEL=${3:-models/fmnist-small.safetensors}
DDPM=${DDPM:-build/ddpm}
PY=/usr/bin/python3
W=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/precision.XXXXXX")}
mkdir -p "$W"
for p in fp32 bf16; do
  [ -f "$W/train-$p/metrics.jsonl" ] && [ -f "$W/train-$p/checkpoint.safetensors" ] && continue
  "$DDPM" train --config configs/fmnist-small.toml --out "$W/train-$p" --steps "$STEPS" --precision $p \
    --log-every 10 --sample-every 0 --save-every 0 --no-tensorboard >"$W/train-$p.log" 2>&1
done
S=(sample --checkpoint "$MODEL" --sampler dpm++2m --steps 20 --num "$N" --batch-size 250 --format npz)
[ -f "$W/fp32.npz" ] || "$DDPM" "${S[@]}" --seed 1 --precision fp32 --out "$W/fp32.npz" >"$W/fp32.json" 2>/dev/null
[ -f "$W/bf16.npz" ] || "$DDPM" "${S[@]}" --seed 1 --precision bf16 --out "$W/bf16.npz" >"$W/bf16.json" 2>/dev/null
[ -f "$W/fp32b.npz" ] || "$DDPM" "${S[@]}" --seed 2 --precision fp32 --out "$W/fp32b.npz" >"$W/fp32b.json" 2>/dev/null
for s in fp32 bf16 fp32b; do
  [ -f "$W/eval-$s.json" ] || "$DDPM" eval --samples "$W/$s.npz" --ref fashion-mnist@test --metrics fid >"$W/eval-$s.json" 2>/dev/null
done
$PY - "$W" "$STEPS" "$N" <<'PY'
import json, sys, numpy as np
w, steps, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def curve(p):
    rows = [json.loads(l) for l in open(f"{w}/train-{p}/metrics.jsonl")]
    rows = [r for r in rows if "loss" in r and "step" in r]
    return np.array([r["step"] for r in rows]), np.array([r["loss"] for r in rows])
(s32, l32), (s16, l16) = curve("fp32"), curve("bf16")
m = min(len(l32), len(l16)); s32, l32, l16 = s32[:m], l32[:m], l16[:m]
k = 10
sm = lambda a: np.convolve(a, np.ones(k) / k, mode="valid")
a, b = sm(l32), sm(l16)
rel = float(np.mean(np.abs(b - a) / a))
# The plot: both smoothed curves on a log axis, SVG by hand (no plotting library needed).
W_, H_, L, R, T, B = 640, 360, 60, 20, 20, 40
xs = s32[k - 1:]
a_l, b_l = np.log10(a), np.log10(b)
ymin, ymax = float(min(a_l.min(), b_l.min())), float(max(a_l.max(), b_l.max()))
ymin, ymax = ymin - 0.05 * (ymax - ymin), ymax + 0.05 * (ymax - ymin)
X = lambda x: L + (x - xs[0]) / max(1, xs[-1] - xs[0]) * (W_ - L - R)
Y = lambda y: T + (ymax - y) / (ymax - ymin) * (H_ - T - B)
path = lambda ys: " ".join(f"{'M' if i == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for i, (x, y) in enumerate(zip(xs, ys)))
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W_}" height="{H_}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W_}" height="{H_}" fill="white"/>',
       f'<line x1="{L}" y1="{H_-B}" x2="{W_-R}" y2="{H_-B}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{H_-B}" stroke="black"/>']
for i in range(5):
    y = ymin + (ymax - ymin) * i / 4
    svg.append(f'<text x="{L-6}" y="{Y(y)+4:.1f}" text-anchor="end">{10 ** y:.3f}</text>')
    x = xs[0] + (xs[-1] - xs[0]) * i / 4
    svg.append(f'<text x="{X(x):.1f}" y="{H_-B+16}" text-anchor="middle">{int(x)}</text>')
svg += [f'<path d="{path(a_l)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>',
        f'<path d="{path(b_l)}" fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 2"/>',
        f'<text x="{W_-R-200}" y="{T+14}" fill="#1f77b4">fp32</text><text x="{W_-R-200}" y="{T+30}" fill="#d62728">bf16 (dashed)</text>',
        f'<text x="{(L+W_-R)/2}" y="{H_-6}" text-anchor="middle">step (fmnist-small, seed 0; loss averaged over 10 logged points)</text>',
        f'<text x="14" y="{(T+H_-B)/2}" transform="rotate(-90 14 {(T+H_-B)/2})" text-anchor="middle">L_simple (log scale)</text>', '</svg>']
open(f"{w}/precision-loss.svg", "w").write("\n".join(svg))
x32 = np.load(f"{w}/fp32.npz")["arr_0"].astype(np.float64)
x16 = np.load(f"{w}/bf16.npz")["arr_0"].astype(np.float64)
fid = {s: json.load(open(f"{w}/eval-{s}.json"))["fid"] for s in ("fp32", "bf16", "fp32b")}
secs = {s: json.load(open(f"{w}/{s}.json"))["seconds"] for s in ("fp32", "bf16")}
print(json.dumps({"steps": steps, "loss_points": int(m), "smoothed_mean_rel_diff": round(rel, 5),
                  "final_smoothed_loss": {"fp32": round(float(a[-1]), 5), "bf16": round(float(b[-1]), 5)},
                  "samples": n, "mean_abs_pixel_diff": round(float(np.abs(x32 - x16).mean()), 4),
                  "fid": {"fp32_seed1": round(fid["fp32"], 3), "bf16_seed1": round(fid["bf16"], 3), "fp32_seed2": round(fid["fp32b"], 3)},
                  "sample_seconds": secs, "plot": f"{w}/precision-loss.svg"}))
PY
