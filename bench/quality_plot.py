#!/usr/bin/env python3
"""quality_plot.py — FID along training for the two fmnist-small recipes of docs/quality.md, as an SVG.

What it is: a plot of rows other scripts measured (500 samples, seed 1, in-tree classifier FID, floor 25.0):
the old recipe's diagnosis run (docs/quality-curve.jsonl), the chosen recipe's 2,000-step screen row
(docs/recipe-screen.jsonl, run minsnr_vcos) and the shipped run's checkpoints (docs/quality-10k-steps.jsonl,
docs/quality-shipped.jsonl, rows with num 500), and the shipped run's 10,000-sample rows (docs/quality-shipped.jsonl,
floor 2.0) in orange. Also prints, per recipe, sample count and step, the ratio of DPM++2M-20 and DDIM-50 to
DDPM-250 (the issue's "within 15% / 25% of the best") as JSON lines.
What it is not: a measurement — it runs no sampler.
Usage: bench/quality_plot.py [--svg docs/quality-curve.svg]
"""
import argparse
import json

from svg_plot import add_series, log_frame

ap = argparse.ArgumentParser()
ap.add_argument("--svg", default="docs/quality-curve.svg")
a = ap.parse_args()

ROWS = ["dpm++2m-20", "ddim-50", "ddpm-250"]
OLD, NEW = "old recipe (L_simple, ε, linear)", "chosen recipe (min-SNR-5, v, cosine)"


NEW10K = "chosen recipe, 10k samples (floor 2.0)"


def rows(path, keep, num):
    for line in open(path):
        r = json.loads(line)
        if r.get("row") in ROWS and r.get("num") == num and "step" in r and keep(r):
            yield r


SOURCES = [(OLD, "docs/quality-curve.jsonl", lambda r: True, 500),
           (NEW, "docs/recipe-screen.jsonl", lambda r: r.get("run") == "minsnr_vcos", 500),
           (NEW, "docs/quality-10k-steps.jsonl", lambda r: True, 500),
           (NEW, "docs/quality-shipped.jsonl", lambda r: True, 500),
           (NEW10K, "docs/quality-shipped.jsonl", lambda r: True, 10000)]
series = {}
for recipe, path, keep, num in SOURCES:
    for r in rows(path, keep, num):
        series.setdefault((recipe, r["row"]), {})[r["step"]] = r["fid"]

for recipe in (OLD, NEW, NEW10K):
    best = series.get((recipe, "ddpm-250"), {})
    for step in sorted(best):
        out = {"recipe": recipe, "step": step, "ddpm-250": best[step]}
        for row in ("dpm++2m-20", "ddim-50"):
            f = series.get((recipe, row), {}).get(step)
            if f is not None:
                out[row] = f
                out[row + "/ddpm-250"] = round(f / best[step], 3)
        print(json.dumps(out))

W, H, L, R, T, B = 720, 400, 64, 250, 20, 44
xs = [s for pts in series.values() for s in pts]
ys = [f for pts in series.values() for f in pts.values()] + [25.0]
x1 = max(xs) * 1.05
y_lo, y_hi = min(ys) * 0.9, max(ys) * 1.1
X, Y, svg = log_frame(W, H, L, R, T, B, x1, y_lo, y_hi)
for f in (10, 15, 20, 30, 40, 50, 70, 100, 150, 200, 300):
    if y_lo <= f <= y_hi:
        svg.append(f'<text x="{L-6}" y="{Y(f)+4:.1f}" text-anchor="end">{f}</text>')
        svg.append(f'<line x1="{L}" y1="{Y(f):.1f}" x2="{W-R}" y2="{Y(f):.1f}" stroke="#ddd"/>')
svg.append(f'<line x1="{L}" y1="{Y(25.0):.1f}" x2="{W-R}" y2="{Y(25.0):.1f}" stroke="#2ca02c" stroke-dasharray="4,3"/>')
svg.append(f'<text x="{L+4}" y="{Y(25.0)-4:.1f}" fill="#2ca02c">real-data floor 25.0 at 500 samples (2.0 at 10k)</text>')
for s in range(0, int(x1) + 1, 5000):
    svg.append(f'<text x="{X(s):.1f}" y="{H-B+16}" text-anchor="middle">{s // 1000}k</text>')
colour = {OLD: "#7f7f7f", NEW: "#1f77b4", NEW10K: "#ff7f0e"}
dash = {"dpm++2m-20": "", "ddim-50": ' stroke-dasharray="2,3"', "ddpm-250": ' stroke-dasharray="7,4"'}
ly = T + 10
order = {NEW: 0, NEW10K: 1, OLD: 2}
for (recipe, row), pts in sorted(series.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
    label = f'{row}, {"10k samples" if recipe == NEW10K else recipe.split(" (")[0]}'
    add_series(svg, sorted(pts.items()), X, Y, colour[recipe], dash[row], label, W - R + 10, ly)
    ly += 16
svg += [f'<text x="{(L+W-R)/2}" y="{H-8}" text-anchor="middle">training step (batch 64)</text>',
        f'<text x="16" y="{(T+H-B)/2}" transform="rotate(-90 16 {(T+H-B)/2})" text-anchor="middle">'
        'FID, 500 samples (10k in orange; log scale)</text>',
        '</svg>']
open(a.svg, "w").write("\n".join(svg) + "\n")
