#!/usr/bin/env bash
# test_restoration_cli.sh — end-to-end tests of the restoration verbs (`ddpm inpaint|upscale|denoise|edit|
# interpolate`) on a tiny model trained here for a few steps: exit status, grid sizes, the npz layout, PSNR fields
# with --data, known pixels kept exactly, the mask-file convention, results independent of --batch-size, and every
# bad input (one `ddpm: error:` line, non-zero exit, no output written, an existing output untouched). Not here:
# the quality of the methods (tests/test_restoration.cpp checks them against closed-form oracles).
# Usage: tests/test_restoration_cli.sh path/to/ddpm
set -u
DDPM=${1:?usage: test_restoration_cli.sh path/to/ddpm}
T=$(mktemp -d "${TMPDIR:-/tmp}/ddpm-restore.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
start=$(date +%s)

# img.py — PNG and npz helpers with Python's stdlib only (independent of our code):
#   img.py size FILE                   "W H" of a PNG (and every IDAT inflates)
#   img.py fmnist I OUT.png            Fashion-MNIST training image I as an 8-bit gray PNG
#   img.py make OUT.png W H C EXPR     a PNG whose value at (x, y, c) is the Python expression EXPR
#   img.py kept IN.png OUT.png MASK    1 if OUT equals IN wherever the mask PNG (file convention) is black
#   img.py npz FILE                    "arr_0 shape; arr_1 shape; ..." of an npz (uint8 members)
#   img.py same_npz A B ARR            1 if member ARR of two npz files holds the same bytes
#   img.py psnr NPZ JSON K I...        the JSON's PSNR fields (+ SE) recomputed from the npz and Fashion-MNIST images I
cat >"$T/img.py" <<'PYEOF'
import gzip, struct, sys, zipfile, zlib, ast

def read_png(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(b):
        n, = struct.unpack(">I", b[pos:pos + 4]); typ = b[pos + 4:pos + 8]; body = b[pos + 8:pos + 8 + n]; pos += 12 + n
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8, "8-bit only"
            c = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        if typ == b"IDAT": idat += body
    raw = zlib.decompress(idat); stride = w * c; out = []; prev = [0] * stride
    for y in range(h):
        f = raw[y * (stride + 1)]; row = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]; cur = [0] * stride
        for x in range(stride):
            left = cur[x - c] if x >= c else 0; up = prev[x]; ul = prev[x - c] if x >= c else 0
            if f == 0: p = 0
            elif f == 1: p = left
            elif f == 2: p = up
            elif f == 3: p = (left + up) // 2
            else:
                pa, pb, pc = abs(up - ul), abs(left - ul), abs(left + up - 2 * ul)
                p = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
            cur[x] = (row[x] + p) & 255
        out.append(cur); prev = cur
    return w, h, c, out  # out[y][x*c + ch]

def write_png(path, w, h, c, px):  # px(x, y, ch) -> 0..255
    ctype = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + bytes(px(x, y, ch) for x in range(w) for ch in range(c)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)) +
                           chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

def npz_members(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            d = z.read(name); assert d[:6] == b"\x93NUMPY"
            n, = struct.unpack("<H", d[8:10]); hdr = ast.literal_eval(d[10:10 + n].decode())
            out[name[:-4]] = (hdr["descr"], tuple(hdr["shape"]), d[10 + n:])
    return out

cmd = sys.argv[1]
if cmd == "size":
    w, h, c, _ = read_png(sys.argv[2]); print(w, h)
elif cmd == "fmnist":
    i = int(sys.argv[2])
    d = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()
    img = d[16 + i * 784:16 + (i + 1) * 784]
    write_png(sys.argv[3], 28, 28, 1, lambda x, y, ch: img[y * 28 + x])
elif cmd == "make":
    w, h, c = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    write_png(sys.argv[2], w, h, c, lambda x, y, ch: int(eval(sys.argv[6])) & 255)
elif cmd == "kept":
    _, _, ci, a = read_png(sys.argv[2]); _, _, co, b = read_png(sys.argv[3]); w, h, cm, m = read_png(sys.argv[4])
    assert ci == co
    kept = [(x, y) for y in range(h) for x in range(w) if m[y][x * cm] < 128]
    assert kept
    print(int(all(a[y][x * ci + ch] == b[y][x * co + ch] for x, y in kept for ch in range(ci))))
elif cmd == "npz":
    m = npz_members(sys.argv[2])
    print("; ".join("%s %s %s" % (k, m[k][0], ",".join(map(str, m[k][1]))) for k in sorted(m)))
elif cmd == "psnr":  # psnr NPZ JSON K INDEX... : recompute the JSON's PSNR fields from the npz and the dataset
    import json, math
    m = npz_members(sys.argv[2]); j = json.load(open(sys.argv[3])); K = int(sys.argv[4]); idx = list(map(int, sys.argv[5:]))
    d = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()
    truth = [d[16 + i * 784:16 + (i + 1) * 784] for i in idx]
    res = m["arr_0"][2]; inp = m["arr_1"][2]
    def psnr(a, b, region=None):
        sel = range(784) if region is None else [p for p in range(784) if region[p]]
        mse = sum((a[p] / 255 - b[p] / 255) ** 2 for p in sel) / len(sel)
        return 10 * math.log10(1 / max(mse, 1e-10))
    def mean_se(v):
        mu = sum(v) / len(v); sd = math.sqrt(sum((x - mu) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0
        return mu, sd / math.sqrt(len(v))
    first = [res[i * K * 784:(i * K + 1) * 784] for i in range(len(idx))]
    got = {"psnr": mean_se([psnr(first[i], truth[i]) for i in range(len(idx))])}
    if K > 1:
        mean = [[sum(res[(i * K + k) * 784 + p] for k in range(K)) / K for p in range(784)] for i in range(len(idx))]
        got["psnr_posterior_mean"] = mean_se([psnr(mean[i], truth[i]) for i in range(len(idx))])
    if len(sys.argv) > 5 and j.get("mask") == "center":  # the mean-fill baseline, on all pixels and the missing square
        miss = [7 <= p // 28 < 21 and 7 <= p % 28 < 21 for p in range(784)]
        base = []
        for t in truth:
            known = [t[p] for p in range(784) if not miss[p]]
            fill = round(sum(known) / len(known))
            base.append([fill if miss[p] else t[p] for p in range(784)])
        got["psnr_baseline"] = mean_se([psnr(base[i], truth[i]) for i in range(len(idx))])
        got["psnr_baseline_missing"] = mean_se([psnr(base[i], truth[i], miss) for i in range(len(idx))])
        got["psnr_missing"] = mean_se([psnr(first[i], truth[i], miss) for i in range(len(idx))])
    bad = [k for k, (mu, se) in got.items() if abs(j[k] - mu) > 0.02 or abs(j[k + "_se"] - se) > 0.02]
    print(" ".join(sorted(got)) if not bad else "mismatch: " + " ".join("%s %s vs %s" % (k, j[k], got[k]) for k in bad))
elif cmd == "same_npz":
    print(int(npz_members(sys.argv[2])[sys.argv[4]][2] == npz_members(sys.argv[3])[sys.argv[4]][2]))
PYEOF
img() { $PY "$T/img.py" "$@"; }
json() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
has_keys() { local f=$1; shift; $PY -c 'import json,sys,math; d=json.load(open(sys.argv[1]))
sys.exit(0 if all(k in d and isinstance(d[k], (int, float)) and math.isfinite(d[k]) for k in sys.argv[2:]) else 1)' "$f" "$@"; }

# --- a tiny model, a few steps of training on the real Fashion-MNIST ------------------------------------------------
RUN="$T/run"
printf 'preset = "tiny"\n[train]\nsample_num = 1\nsample_steps = 1\n' >"$T/tiny.toml"  # a 1-step final grid
"$DDPM" train --config "$T/tiny.toml" --data fashion-mnist --out "$RUN" --steps 2 --batch-size 4 --threads 2 \
  2>"$T/train.log"
check "train a tiny model" [ $? -eq 0 ]
CK="$RUN/checkpoint.safetensors"
COMMON=(--checkpoint "$CK" --steps 3 --threads 2)

img fmnist 0 "$T/a.png"; img fmnist 1 "$T/b.png"
img make "$T/mask_center.png" 28 28 1 '255 if 7 <= x < 21 and 7 <= y < 21 else 0'   # white = fill: --mask-shape center
img make "$T/mask_center_rgba.png" 28 28 4 '(255 if 7 <= x < 21 and 7 <= y < 21 else 0) if ch < 3 else 255'
img make "$T/mask_lines.png" 28 28 1 '255 if y % 2 == 1 else 0'

# --- inpaint ---------------------------------------------------------------------------------------------------------
for m in repaint replace ddnm; do
  extra=(--method $m); [ $m = repaint ] && extra+=(--jump-length 2 --resample 2)
  "$DDPM" inpaint "${COMMON[@]}" --image "$T/a.png" --mask-shape center "${extra[@]}" --num 2 \
    --out "$T/in_$m.png" --out-dir "$T/in_$m" --json "$T/in_$m.json" >"$T/in_$m.out" 2>"$T/in_$m.err"
  check "inpaint --method $m exits 0" [ $? -eq 0 ]
  checkx "  grid is 1 row of input + 2 results (92x32)" '[ "$(img size "$T/in_$m.png")" = "92 32" ]'
  checkx "  known pixels of both results equal the input exactly" \
    '[ "$(img kept "$T/a.png" "$T/in_$m/000000.png" "$T/mask_center.png")$(img kept "$T/a.png" "$T/in_$m/000001.png" "$T/mask_center.png")" = 11 ]'
  checkx "  the two results differ" '! cmp -s "$T/in_$m/000000.png" "$T/in_$m/000001.png"'
  checkx "  --json holds the printed line" 'cmp -s "$T/in_$m.json" "$T/in_$m.out"'
  checkx "  one summary line on stderr" '[ "$(wc -l <"$T/in_$m.err")" -eq 1 ] && grep -q "^inpaint: 1 input x 2 results" "$T/in_$m.err"'
done
checkx "repaint reports its NFE (3 levels, L = 2, R = 2: 3 + 2)" '[ "$(json "$T/in_repaint.json" "d[\"nfe\"]")" = 5 ]'
checkx "ddnm reports eta 0.85 and 3 NFE" '[ "$(json "$T/in_ddnm.json" "(d[\"eta\"], d[\"nfe\"])")" = "(0.85, 3)" ]'
checkx "replace uses fixed_small unless told (the model says fixed_large)" \
  '[ "$(json "$T/in_replace.json" "d[\"variance\"]")" = fixed_small ]'
"$DDPM" inpaint "${COMMON[@]}" --image "$T/a.png" --mask-shape center --method replace --num 2 --variance fixed_large \
  --out "$T/in_large.png" >"$T/in_large.json" 2>/dev/null
checkx "  --variance fixed_large gives other results and says so" \
  '! cmp -s "$T/in_large.png" "$T/in_replace.png" && grep -q "\"variance\":\"fixed_large\"" "$T/in_large.json"'
"$DDPM" inpaint "${COMMON[@]}" --image "$T/a.png" --mask "$T/mask_center.png" --method replace --num 2 \
  --out "$T/in_file.png" >/dev/null 2>&1
check "a white-centre mask file is --mask-shape center" cmp -s "$T/in_file.png" "$T/in_replace.png"
"$DDPM" inpaint "${COMMON[@]}" --image "$T/a.png" --mask "$T/mask_center_rgba.png" --method replace --num 2 \
  --out "$T/in_rgba.png" >/dev/null 2>&1
check "  and so is the same mask as RGBA" cmp -s "$T/in_rgba.png" "$T/in_replace.png"
"$DDPM" inpaint "${COMMON[@]}" --image "$T/a.png" --mask "$T/mask_lines.png" --method replace --out-dir "$T/in_lines" \
  >/dev/null 2>&1
checkx "--mask-shape lines = rows 1, 3, ... missing: kept pixels exact" \
  '[ "$(img kept "$T/a.png" "$T/in_lines/000000.png" "$T/mask_lines.png")" = 1 ]'

IN_D=(inpaint "${COMMON[@]}" --data fashion-mnist --index 0:2 --mask-shape random:0.5 --num 2 --method replace)
"$DDPM" "${IN_D[@]}" --seed 7 --out "$T/ind.png" >"$T/ind.json" 2>/dev/null
check "inpaint --data --index 0:2 --num 2 exits 0" [ $? -eq 0 ]
checkx "  grid: 2 rows of input, 2 results, truth (122x62)" '[ "$(img size "$T/ind.png")" = "122 62" ]'
check "  JSON: PSNR of the first result, the mean of 2, the baseline, each also on the missing region (+ SE)" \
  has_keys "$T/ind.json" psnr psnr_se psnr_posterior_mean psnr_posterior_mean_se psnr_baseline psnr_baseline_se \
  psnr_missing psnr_missing_se psnr_posterior_mean_missing psnr_baseline_missing missing_fraction
checkx "  random:0.5 misses half the pixels" '[ "$(json "$T/ind.json" "d[\"missing_fraction\"]")" = 0.5 ]'
"$DDPM" "${IN_D[@]}" --seed 7 --format npz --out "$T/ind.npz" >"$T/ind_npz.json" 2>/dev/null
checkx "  --format npz: arr_0 uint8 [4,28,28,1] (N·K), arr_1 the 2 masked inputs" \
  '[ "$(img npz "$T/ind.npz")" = "arr_0 |u1 4,28,28,1; arr_1 |u1 2,28,28,1" ]'
checkx "  PSNR of the first result and of the mean of 2 match a recomputation from the npz" \
  '[ "$(img psnr "$T/ind.npz" "$T/ind_npz.json" 2 0 1)" = "psnr psnr_posterior_mean" ]'
"$DDPM" inpaint --checkpoint "$CK" --steps 1 --threads 2 --data fashion-mnist --index 3,5,8 --mask-shape center --format npz \
  --out "$T/inc.npz" >"$T/inc.json" 2>/dev/null
checkx "  the mean-fill baseline and the missing-region PSNRs match a recomputation (center mask)" \
  '[ "$(img psnr "$T/inc.npz" "$T/inc.json" 1 3 5 8)" = "psnr psnr_baseline psnr_baseline_missing psnr_missing" ]'
"$DDPM" "${IN_D[@]}" --seed 7 --format npz --out "$T/ind_b1.npz" --batch-size 1 >/dev/null 2>&1
checkx "  the same results with --batch-size 1" '[ "$(img same_npz "$T/ind.npz" "$T/ind_b1.npz" arr_0)" = 1 ]'
"$DDPM" "${IN_D[@]}" --format npz --out "$T/ind_s8.npz" --seed 8 >/dev/null 2>&1
checkx "  other results with another --seed" '[ "$(img same_npz "$T/ind.npz" "$T/ind_s8.npz" arr_0)" = 0 ]'

# --- upscale ---------------------------------------------------------------------------------------------------------
for m in ddnm ilvr; do
  "$DDPM" upscale "${COMMON[@]}" --data fashion-mnist --index 0,1 --factor 4 --method $m --out "$T/up_$m.png" \
    >"$T/up_$m.json" 2>/dev/null
  check "upscale --method $m --factor 4 exits 0" [ $? -eq 0 ]
  checkx "  grid: 2 rows of input, result, truth (92x62)" '[ "$(img size "$T/up_$m.png")" = "92 62" ]'
  check "  JSON: PSNR and the bicubic baseline" has_keys "$T/up_$m.json" psnr psnr_se psnr_baseline psnr_baseline_se
done
"$DDPM" upscale "${COMMON[@]}" --data fashion-mnist --index 0,1 --factor 4 --format npz --out "$T/up.npz" >/dev/null 2>&1
checkx "  --format npz: arr_0 [2,28,28,1], arr_1 the low-resolution inputs [2,7,7,1]" \
  '[ "$(img npz "$T/up.npz")" = "arr_0 |u1 2,28,28,1; arr_1 |u1 2,7,7,1" ]'
img make "$T/low7.png" 7 7 1 '(x * 37 + y * 11) % 256'
"$DDPM" upscale "${COMMON[@]}" --image "$T/low7.png" --factor 4 --num 3 --out "$T/up_img.png" >/dev/null 2>&1
checkx "upscale --image 7x7 --factor 4 --num 3: input + 3 results (122x32)" '[ "$(img size "$T/up_img.png")" = "122 32" ]'

# --- denoise ---------------------------------------------------------------------------------------------------------
"$DDPM" denoise "${COMMON[@]}" --data fashion-mnist --index 2:4 --add-noise 0.1 --num 2 --format npz \
  --out "$T/dn.npz" >"$T/dn.json" 2>/dev/null
check "denoise --data --add-noise 0.1 exits 0" [ $? -eq 0 ]
check "  JSON: PSNR, its posterior mean, the oracle-tuned blur, the noisy input" \
  has_keys "$T/dn.json" psnr psnr_posterior_mean psnr_baseline baseline_blur_px psnr_input t_start
checkx "  the baseline says it is oracle-tuned" 'grep -q "oracle-tuned" "$T/dn.json"'
checkx "  npz: arr_0 [4,28,28,1], arr_1 the noisy inputs" '[ "$(img npz "$T/dn.npz")" = "arr_0 |u1 4,28,28,1; arr_1 |u1 2,28,28,1" ]'
"$DDPM" denoise "${COMMON[@]}" --data fashion-mnist --index 2:4 --add-noise 0.1 --num 2 --format npz \
  --out "$T/dn_b1.npz" --batch-size 1 >/dev/null 2>&1
checkx "  the same results (and the same noisy inputs) with --batch-size 1" \
  '[ "$(img same_npz "$T/dn.npz" "$T/dn_b1.npz" arr_0)$(img same_npz "$T/dn.npz" "$T/dn_b1.npz" arr_1)" = 11 ]'
"$DDPM" denoise "${COMMON[@]}" --image "$T/a.png" --sigma 0.2 --out "$T/dn.png" >/dev/null 2>&1
checkx "denoise --image --sigma 0.2: input + result (62x32)" '[ "$(img size "$T/dn.png")" = "62 32" ]'

# --- edit ------------------------------------------------------------------------------------------------------------
"$DDPM" edit "${COMMON[@]}" --image "$T/a.png" --strength 0.5 --num 3 --out "$T/ed.png" >"$T/ed.json" 2>/dev/null
check "edit --strength 0.5 --num 3 exits 0" [ $? -eq 0 ]
checkx "  grid: guide + 3 results (122x32)" '[ "$(img size "$T/ed.png")" = "122 32" ]'
checkx "  t_0 = 499 of T = 1000" '[ "$(json "$T/ed.json" "d[\"t_start\"]")" = 499 ]'
"$DDPM" edit "${COMMON[@]}" --image "$T/a.png" --strength 0.8 --mask "$T/mask_center.png" --out-dir "$T/ed_m" \
  >/dev/null 2>&1
checkx "edit --mask: the black (kept) pixels come back exactly" \
  '[ "$(img kept "$T/a.png" "$T/ed_m/000000.png" "$T/mask_center.png")" = 1 ]'

"$DDPM" edit "${COMMON[@]}" --data fashion-mnist@test --index 0:3 --strength 0.3 --format npz --out "$T/ed_d.npz" \
  >"$T/ed_d.json" 2>/dev/null
check "edit --data --index 0:3 exits 0" [ $? -eq 0 ]
checkx "  npz: 3 results, the 3 guides" '[ "$(img npz "$T/ed_d.npz")" = "arr_0 |u1 3,28,28,1; arr_1 |u1 3,28,28,1" ]'
checkx "  PSNR to the guides reported" '$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"psnr_guide\"] > 0 and \"psnr_guide_se\" in d" "$T/ed_d.json"'

# --- a class-conditional model: --class and --guidance with each verb (the shipped one, 3 steps) --------------
COND="$(dirname "$0")/../models/fmnist-small-cond.safetensors"
CC=(--checkpoint "$COND" --steps 3 --threads 2 --class 3 --guidance 1)
"$DDPM" inpaint "${CC[@]}" --image "$T/a.png" --mask-shape center --method ddnm --json "$T/cc_in.json" --out "$T/cc.png" >/dev/null 2>&1 &&
  "$DDPM" upscale "${CC[@]}" --data fashion-mnist --index 0 --factor 2 --out "$T/cc.png" >/dev/null 2>&1 &&
  "$DDPM" denoise "${CC[@]}" --image "$T/a.png" --sigma 0.1 --out "$T/cc.png" >/dev/null 2>&1 &&
  "$DDPM" edit "${CC[@]}" --image "$T/a.png" --strength 0.5 --out "$T/cc.png" >/dev/null 2>&1 &&
  "$DDPM" interpolate "${CC[@]}" --a "$T/a.png" --b "$T/b.png" --frames 2 --out "$T/cc.png" >/dev/null 2>&1
check "every verb takes --class 3 --guidance 1 on the class-conditional model" [ $? -eq 0 ]
checkx "  and reports the class, the guidance and two forward images per NFE" \
  '[ "$(json "$T/cc_in.json" "(d[\"class\"], d[\"guidance\"], d[\"forward_images_per_image\"])")" = "(3, 1.0, 6)" ]'
"$DDPM" inpaint --checkpoint "$COND" --steps 3 --threads 2 --class 3 --image "$T/a.png" --mask-shape center \
  --method ddnm --out "$T/cc3.png" >/dev/null 2>&1
"$DDPM" inpaint --checkpoint "$COND" --steps 3 --threads 2 --class 7 --image "$T/a.png" --mask-shape center \
  --method ddnm --out "$T/cc7.png" >/dev/null 2>&1
checkx "  another class, other results" '! cmp -s "$T/cc3.png" "$T/cc7.png"'
expect_error "--class out of range" "class" "$DDPM" inpaint --checkpoint "$COND" --steps 2 --class 10 --image "$T/a.png" --mask-shape center --out "$T/never_c.png"

# --- the baseline's images for ddpm eval --------------------------------------------------------------------------
"$DDPM" inpaint "${COMMON[@]}" --data fashion-mnist --index 0:2 --mask-shape left --method replace --format npz \
  --out "$T/bo.npz" --baseline-out "$T/bo_base.npz" >/dev/null 2>&1
check "inpaint --baseline-out exits 0" [ $? -eq 0 ]
checkx "  the baseline's 2 images in arr_0" '[ "$(img npz "$T/bo_base.npz")" = "arr_0 |u1 2,28,28,1" ]'
checkx "  the baseline keeps the known pixels" '$PY -c "
import zipfile, sys
z = zipfile.ZipFile(sys.argv[1]); b = z.read(\"arr_0.npy\"); h = b.index(b\"\\n\") + 1; px = b[h:]
d = zipfile.ZipFile(sys.argv[2]).read(\"arr_1.npy\"); dp = d[d.index(b\"\\n\") + 1:]
# right half (x >= 14) known: equal to the degraded input there
assert all(px[i] == dp[i] for i in range(len(px)) if (i % 28) >= 14)" "$T/bo_base.npz" "$T/bo.npz"'

# --- interpolate -----------------------------------------------------------------------------------------------------
"$DDPM" interpolate "${COMMON[@]}" --a "$T/a.png" --b "$T/b.png" --frames 4 --out "$T/ip.png" >"$T/ip.json" 2>/dev/null
check "interpolate --frames 4 exits 0" [ $? -eq 0 ]
checkx "  grid: a, 4 frames, b (182x32)" '[ "$(img size "$T/ip.png")" = "182 32" ]'
"$DDPM" interpolate "${COMMON[@]}" --a "$T/a.png" --b "$T/b.png" --frames 4 --format npz --out "$T/ip.npz" >/dev/null 2>&1
checkx "  npz: arr_0 the 4 frames, arr_1 the two ends" '[ "$(img npz "$T/ip.npz")" = "arr_0 |u1 4,28,28,1; arr_1 |u1 2,28,28,1" ]'
"$DDPM" interpolate "${COMMON[@]}" --a "$T/a.png" --b "$T/b.png" --frames 4 --format npz --out "$T/ip_b1.npz" \
  --batch-size 1 >/dev/null 2>&1
checkx "  the same frames with --batch-size 1" '[ "$(img same_npz "$T/ip.npz" "$T/ip_b1.npz" arr_0)" = 1 ]'

# --- bad input: one line, non-zero exit, nothing written -------------------------------------------------------------
img make "$T/big.png" 32 32 1 'x'
img make "$T/rgb.png" 28 28 3 'x * 9'
img make "$T/black.png" 28 28 1 '0'
img make "$T/white.png" 28 28 1 '255'
head -c 300 "$T/a.png" >"$T/trunc.png"
echo "not an image" >"$T/text.png"
printf 'precious' >"$T/existing.png"
O="$T/never.png"
I=(--checkpoint "$CK" --steps 2)
expect_error "mask of the wrong size"        "the mask is 32x32" "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask "$T/big.png" --out "$O"
expect_error "image of the wrong size"       "32x32, expected 28x28" "$DDPM" inpaint "${I[@]}" --image "$T/big.png" --mask-shape center --out "$O"
expect_error "image with the wrong channels" "3-channel"         "$DDPM" inpaint "${I[@]}" --image "$T/rgb.png" --mask-shape center --out "$O"
expect_error "mask that keeps everything"    "keeps every pixel" "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask "$T/black.png" --out "$O"
expect_error "mask that keeps nothing"       "keeps no pixel"    "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask "$T/white.png" --out "$O"
expect_error "edit mask that keeps everything" "keeps every pixel" "$DDPM" edit "${I[@]}" --image "$T/a.png" --strength 0.5 --mask "$T/black.png" --out "$O"
expect_error "truncated image"               "a.png\|trunc"      "$DDPM" inpaint "${I[@]}" --image "$T/trunc.png" --mask-shape center --out "$O"
expect_error "truncated mask"                "--mask"            "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask "$T/trunc.png" --out "$O"
expect_error "unreadable image"              "not a PNG or JPEG" "$DDPM" denoise "${I[@]}" --image "$T/text.png" --sigma 0.1 --out "$O"
expect_error "--baseline-out with --image"   "needs --data"      "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --baseline-out "$T/never_b.npz" --out "$O"
expect_error "missing image"                 "cannot open"       "$DDPM" edit "${I[@]}" --image "$T/none.png" --strength 0.5 --out "$O"
expect_error "unknown mask shape"            "unknown mask shape" "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape circle --out "$O"
expect_error "random mask fraction outside (0, 1)" "random:P"   "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape random:1.5 --out "$O"
expect_error "no mask"                       "--mask"            "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --out "$O"
expect_error "--mask and --mask-shape"       "excludes"          "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask "$T/mask_center.png" --mask-shape top --out "$O"
expect_error "unknown method"                "method"            "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --method gan --out "$O"
expect_error "--eta with repaint"            "ddnm only"         "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --eta 0.5 --out "$O"
expect_error "--variance with ddnm"           "repaint|replace only" "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --method ddnm --variance fixed_small --out "$O"
expect_error "--eta outside [0, 1]"          "\[0, 1\]"          "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --method ddnm --eta 2 --out "$O"
expect_error "--image and --data"            "excludes"          "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --data fashion-mnist --mask-shape center --out "$O"
expect_error "neither --image nor --data"    "--image"           "$DDPM" inpaint "${I[@]}" --mask-shape center --out "$O"
expect_error "index out of range"            "out of range"      "$DDPM" inpaint "${I[@]}" --data fashion-mnist --index 60000 --mask-shape center --out "$O"
expect_error "range out of range"            "out of range"      "$DDPM" denoise "${I[@]}" --data fashion-mnist --index 59999:60001 --add-noise 0.1 --out "$O"
expect_error "malformed index"               "--index"           "$DDPM" inpaint "${I[@]}" --data fashion-mnist --index 3:1 --mask-shape center --out "$O"
expect_error "steps beyond T"                "\[1, 1000\]"       "$DDPM" inpaint --checkpoint "$CK" --steps 2000 --image "$T/a.png" --mask-shape center --out "$O"
expect_error "factor that does not divide"   "does not divide"   "$DDPM" upscale "${I[@]}" --data fashion-mnist --factor 3 --out "$O"
expect_error "low-res image of the wrong size" "expected 7x7"    "$DDPM" upscale "${I[@]}" --image "$T/a.png" --factor 4 --out "$O"
expect_error "upscale --eta with ilvr"       "ddnm only"         "$DDPM" upscale "${I[@]}" --data fashion-mnist --factor 4 --method ilvr --eta 0.5 --out "$O"
expect_error "sigma 0"                       "must be > 0"       "$DDPM" denoise "${I[@]}" --image "$T/a.png" --sigma 0 --out "$O"
expect_error "negative added noise"          "must be > 0"       "$DDPM" denoise "${I[@]}" --data fashion-mnist --add-noise -0.1 --out "$O"
expect_error "sigma beyond the schedule"     "noisier than"      "$DDPM" denoise "${I[@]}" --image "$T/a.png" --sigma 500 --out "$O"
expect_error "--image without --sigma"       "--sigma"           "$DDPM" denoise "${I[@]}" --image "$T/a.png" --out "$O"
expect_error "--sigma with --data"           "excludes"          "$DDPM" denoise "${I[@]}" --data fashion-mnist --sigma 0.1 --out "$O"
expect_error "strength 0"                    "(0, 1\]"           "$DDPM" edit "${I[@]}" --image "$T/a.png" --strength 0 --out "$O"
expect_error "strength above 1"              "(0, 1\]"           "$DDPM" edit "${I[@]}" --image "$T/a.png" --strength 1.5 --out "$O"
expect_error "one frame"                     "at least 2"        "$DDPM" interpolate "${I[@]}" --a "$T/a.png" --b "$T/b.png" --frames 1 --out "$O"
expect_error "interpolate --num 2"           "--num"             "$DDPM" interpolate "${I[@]}" --a "$T/a.png" --b "$T/b.png" --num 2 --out "$O"
expect_error "interpolate image of the wrong size" "--b"         "$DDPM" interpolate "${I[@]}" --a "$T/a.png" --b "$T/big.png" --out "$O"
expect_error "--class on an unconditional model" "unconditional" "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --class 1 --out "$O"
expect_error "--guidance on an unconditional model" "class-conditional" "$DDPM" edit "${I[@]}" --image "$T/a.png" --strength 0.5 --guidance 1 --out "$O"
expect_error "missing checkpoint"            "cannot open"       "$DDPM" upscale --checkpoint "$T/none.safetensors" --data fashion-mnist --factor 4 --out "$O"
expect_error "output into a missing directory" "does not exist"  "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask-shape center --out "$T/no/dir/x.png"
check "no failed command wrote its output" [ ! -e "$O" ]
expect_error "failure leaves an existing output alone" "keeps no pixel" \
  "$DDPM" inpaint "${I[@]}" --image "$T/a.png" --mask "$T/white.png" --out "$T/existing.png" --json "$T/existing.png"
expect_error "  (npz and --out-dir too)" "3-channel" \
  "$DDPM" inpaint "${I[@]}" --image "$T/rgb.png" --mask-shape center --format npz --out "$T/existing.png" --out-dir "$T/od"
checkx "  the existing file is untouched, no --out-dir created" '[ "$(cat "$T/existing.png")" = precious ] && [ ! -e "$T/od" ]'

echo "restoration_cli: $pass passed, $fail failed ($(( $(date +%s) - start )) s)"
[ "$fail" -eq 0 ]
