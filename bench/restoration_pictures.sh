#!/usr/bin/env bash
# restoration_pictures.sh — the pictures of README.md and docs/restoration.md: each restoration verb on the first
# four Fashion-MNIST test images (3 results per input; per row: the degraded input, the results, the truth) and an
# interpolation between test images 0 and 1, written to docs/restoration_*.png.
# Usage: bench/restoration_pictures.sh [MODEL] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/fmnist-small.safetensors}
OUTDIR=${2:-docs}
DDPM=${DDPM:-build/ddpm}
W=$(mktemp -d "${TMPDIR:-/tmp}/restoration-pictures.XXXXXX")
trap 'rm -rf "$W"' EXIT
C=(--checkpoint "$MODEL" --data fashion-mnist@test --index 0:4 --num 3 --seed 1 --scale 2)
"$DDPM" inpaint "${C[@]}" --mask-shape center --out "$OUTDIR/restoration_inpaint.png" >/dev/null
"$DDPM" upscale "${C[@]}" --factor 4 --out "$OUTDIR/restoration_upscale.png" >/dev/null
"$DDPM" denoise "${C[@]}" --add-noise 0.2 --out "$OUTDIR/restoration_denoise.png" >/dev/null
"$DDPM" edit "${C[@]}" --strength 0.6 --out "$OUTDIR/restoration_edit.png" >/dev/null
# The two ends of the interpolation as PNG files (test images 0 and 1), written with Python's stdlib.
/usr/bin/python3 - "$W" <<'PYEOF'
import gzip, struct, sys, zlib
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
def png(path, px):
    rows = b"".join(b"\x00" + px[y * 28:(y + 1) * 28] for y in range(28))
    ch = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) +
                           ch(b"IDAT", zlib.compress(rows)) + ch(b"IEND", b""))
for i in (0, 1):
    png(f"{sys.argv[1]}/test_{i}.png", raw[i * 784:(i + 1) * 784])
PYEOF
"$DDPM" interpolate --checkpoint "$MODEL" --a "$W/test_0.png" --b "$W/test_1.png" --frames 8 --scale 2 \
  --out "$OUTDIR/restoration_interpolate.png" >/dev/null
