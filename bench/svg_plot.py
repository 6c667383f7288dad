"""svg_plot.py — the log-scale line-plot frame and series drawing shared by bench/'s plotting scripts
(dit_vs_unet.py, quality_plot.py).

What it is: plain SVG text for an x-linear, y-log10 plot area with axes, and one series (path, points, legend
entry). What it is not: a plotting library — ticks, labels and legends' contents stay with each script.
"""
import math


def log_frame(W, H, L, R, T, B, x_max, y_min, y_max):
    """Returns (X, Y, svg): coordinate maps for data x in [0, x_max], y in [y_min, y_max] (log10), and the opening
    SVG lines (white background, the two axes). W, H: canvas; L, R, T, B: margins."""
    y0, y1 = math.log10(y_min), math.log10(y_max)
    X = lambda x: L + (W - L - R) * x / x_max
    Y = lambda y: T + (H - T - B) * (y1 - math.log10(y)) / (y1 - y0)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>']
    return X, Y, svg


def add_series(svg, pts, X, Y, colour, dash, label, lx, ly):
    """Appends one series: pts [(x, y)] sorted by x, drawn as a path with points, and its legend entry (a line
    sample and the label) at (lx, ly). dash: an SVG attribute string ('' for a solid line)."""
    d = " ".join(f'{"M" if i == 0 else "L"}{X(x):.1f},{Y(y):.1f}' for i, (x, y) in enumerate(pts))
    svg.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>')
    svg += [f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
    svg.append(f'<line x1="{lx}" y1="{ly-4}" x2="{lx+26}" y2="{ly-4}" stroke="{colour}" stroke-width="1.6"{dash}/>')
    svg.append(f'<text x="{lx+30}" y="{ly}" fill="{colour}">{label}</text>')
