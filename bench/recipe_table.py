#!/usr/bin/env python3
"""recipe_table.py — docs/quality.md's recipe table from bench/recipe_screen.sh's rows.

    python3 bench/recipe_table.py OUT_DIR [--base base]

Reads OUT_DIR/eval/NAME/curve.jsonl (one run per NAME, rows of bench/quality_curve.sh) and prints a Markdown
table: FID of DPM++2M-20, DDIM-50 and DDPM-250 (500 samples each) and each one's ratio to the base run's.
Not a trainer or an evaluator: it only formats rows that exist (a missing row prints as a blank)."""
import argparse, json, os, sys

LABELS = {  # name in recipe_screen.sh -> (what changes against today's recipe, steps x batch)
    "base": ("today's recipe: L_simple, ε, linear schedule, constant lr 6e-4, EMA 0.999, batch 64", "2,000 × 64"),
    "lrcos": ("cosine lr decay to 0 at the end", "2,000 × 64"),
    "lrlin": ("linear lr decay to 0 at the end", "2,000 × 64"),
    "minsnr": ("min-SNR-5 loss weighting (Hang et al. 2023)", "2,000 × 64"),
    "v": ("v-prediction", "2,000 × 64"),
    "vcos": ("v-prediction + cosine noise schedule", "2,000 × 64"),
    "ema995": ("EMA decay 0.995", "2,000 × 64"),
    "b128": ("batch 128 (half the steps)", "1,000 × 128"),
    "deep": ("two ResBlocks per level (1.67× the cost per image)", "1,200 × 64"),
    "wide": ("width 64 (3.3× the cost per image)", "610 × 64"),
    "minsnr_vcos": ("min-SNR-5 + v-prediction + cosine noise schedule", "2,000 × 64"),
}
ROWS = ["dpm++2m-20", "ddim-50", "ddpm-250"]


def load(path):
    best = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            best[r["row"]] = r["fid"]  # a rerun's row replaces the earlier one
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--base", default="base")
    a = ap.parse_args()
    ev = os.path.join(a.out_dir, "eval")
    if not os.path.isdir(ev):
        sys.exit(f"recipe_table.py: {ev}: no such directory (run bench/recipe_screen.sh first)")
    runs = {n: load(os.path.join(ev, n, "curve.jsonl")) for n in sorted(os.listdir(ev))
            if os.path.isfile(os.path.join(ev, n, "curve.jsonl"))}
    base = runs.get(a.base, {})
    order = [n for n in LABELS if n in runs] + [n for n in runs if n not in LABELS]
    print("| variant | steps × batch | DPM++2M-20 | DDIM-50 | DDPM-250 |")
    print("|---|---|---:|---:|---:|")
    for n in order:
        label, budget = LABELS.get(n, (n, ""))
        cells = []
        for r in ROWS:
            v = runs[n].get(r)
            if v is None:
                cells.append("")
            elif n != a.base and r in base:
                cells.append(f"{v:.1f} ({v / base[r]:.2f}×)")
            else:
                cells.append(f"{v:.1f}")
        print(f"| `{n}`: {label} | {budget} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
