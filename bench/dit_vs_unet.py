#!/usr/bin/env python3
"""dit_vs_unet.py — FID against CPU time for two runs (docs/dit.md): the UNet's curve (docs/quality-curve.jsonl)
and the DiT's (docs/dit-curve.jsonl), each step converted to minutes of the 2-core machine by its training
throughput measured side by side with `ddpm bench --mode train` (--unet-ips, --dit-ips, images/s; batch 64).
Prints one JSON object per (model, row, step) with its CPU-minutes, and writes an SVG plot (log-scale FID).
Usage: bench/dit_vs_unet.py --unet-ips 255.4 --dit-ips 106.05 [--unet FILE] [--dit FILE] [--svg OUT] [--batch 64]
"""
import argparse
import json

from svg_plot import add_series, log_frame

ap = argparse.ArgumentParser()
ap.add_argument("--unet", default="docs/quality-curve.jsonl")
ap.add_argument("--dit", default="docs/dit-curve.jsonl")
ap.add_argument("--unet-ips", type=float, required=True)
ap.add_argument("--dit-ips", type=float, required=True)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--svg", default="docs/dit-vs-unet.svg")
a = ap.parse_args()

ROWS = ["dpm++2m-20", "ddim-50", "ddpm-250"]
series = {}
for name, path, ips in (("UNet fmnist-small", a.unet, a.unet_ips), ("DiT dit-fmnist", a.dit, a.dit_ips)):
    for line in open(path):
        r = json.loads(line)
        if r["row"] not in ROWS:
            continue
        minutes = r["step"] * a.batch / ips / 60.0
        series.setdefault((name, r["row"]), []).append((minutes, r["fid"], r["step"]))
        print(json.dumps({"model": name, "row": r["row"], "step": r["step"], "cpu_minutes": round(minutes, 1),
                          "fid": r["fid"], "num": r["num"]}))

W, H, L, R, T, B = 680, 400, 64, 180, 20, 44
xs = [m for s in series.values() for m, _, _ in s]
ys = [f for s in series.values() for _, f, _ in s]
x1 = max(xs) * 1.05
y_lo, y_hi = min(ys) * 0.9, max(ys) * 1.1
X, Y, svg = log_frame(W, H, L, R, T, B, x1, y_lo, y_hi)
for f in (20, 30, 50, 100, 200, 300, 500):
    if y_lo <= f <= y_hi:
        svg.append(f'<text x="{L-6}" y="{Y(f)+4:.1f}" text-anchor="end">{f}</text>')
        svg.append(f'<line x1="{L}" y1="{Y(f):.1f}" x2="{W-R}" y2="{Y(f):.1f}" stroke="#ddd"/>')
step = 10 if x1 < 120 else 20
for m in range(0, int(x1) + 1, step):
    svg.append(f'<text x="{X(m):.1f}" y="{H-B+16}" text-anchor="middle">{m}</text>')
colour = {"UNet fmnist-small": "#1f77b4", "DiT dit-fmnist": "#d62728"}
dash = {"dpm++2m-20": "", "ddim-50": ' stroke-dasharray="2,3"', "ddpm-250": ' stroke-dasharray="7,4"'}
ly = T + 10
for (name, row), pts in sorted(series.items()):
    pts.sort()
    add_series(svg, [(m, f) for m, f, _ in pts], X, Y, colour[name], dash[row], f"{name.split()[0]} {row}", W - R + 10, ly)
    ly += 16
svg += [f'<text x="{(L+W-R)/2}" y="{H-8}" text-anchor="middle">CPU-minutes of training (2-core Zen 5, batch 64, bf16)</text>',
        f'<text x="16" y="{(T+H-B)/2}" transform="rotate(-90 16 {(T+H-B)/2})" text-anchor="middle">FID, 500 samples (log scale; floor 25.0)</text>',
        '</svg>']
open(a.svg, "w").write("\n".join(svg))
