#!/usr/bin/env bash
# test_eval_cli.sh — evaluation end to end through the `ddpm` binary: `sample --format npz` read by numpy,
# `eval` on an .npz and on a PNG folder (same images, same numbers), the reference cache reused and rebuilt,
# `nll`, `train --eval-every` (metrics.jsonl, best.safetensors, info --run), `classifier eval|train`, and bad
# input (one-line error, non-zero exit, an existing output left alone).
# Usage: tests/test_eval_cli.sh path/to/ddpm
set -u
DDPM=${1:?usage: test_eval_cli.sh path/to/ddpm}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
T=$(mktemp -d "${TMPDIR:-/tmp}/ddpm-eval.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$HERE/lib.sh"
export DDPM_CACHE_DIR="$T/cache"  # never the user's cache
PY=/usr/bin/python3
json() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
M="$SRC/models/fmnist-small.safetensors"
CLS="$SRC/models/fmnist-classifier.safetensors"
S=(sample --checkpoint "$M" --sampler ddim --steps 5 --num 40 --seed 3 --threads 2)

# --- sample --format npz, and the same images as PNGs -------------------------------------------------------------
"$DDPM" "${S[@]}" --format npz --out "$T/s.npz" >"$T/s.json" 2>"$T/s.log"
check "sample --format npz exits 0" [ $? -eq 0 ]
checkx "  numpy reads arr_0 as uint8 [40, 28, 28, 1]" \
  '[ "$($PY -c "import numpy as np; a=np.load(\"$T/s.npz\")[\"arr_0\"]; print(a.dtype, a.shape)")" = "uint8 (40, 28, 28, 1)" ]'
checkx "  its JSON names the npz" '[ "$(json "$T/s.json" "d[\"npz\"]")" = "$T/s.npz" ]'
"$DDPM" "${S[@]}" --out-dir "$T/pngs" >/dev/null 2>&1
checkx "sample --out-dir wrote 40 PNGs" '[ "$(ls "$T/pngs" | wc -l)" -eq 40 ]'
checkx "  the PNGs hold the npz's pixels" '$PY - "$T" <<"PYEOF"
import sys, zlib, struct, numpy as np
t = sys.argv[1]
a = np.load(t + "/s.npz")["arr_0"]
def png_gray(path):  # 8-bit grayscale, filter bytes undone
    data = open(path, "rb").read(); pos = 8; idat = b""; w = h = 0
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos+4]); typ = data[pos+4:pos+8]; body = data[pos+8:pos+8+n]; pos += 12 + n
        if typ == b"IHDR": w, h = struct.unpack(">II", body[:8])
        if typ == b"IDAT": idat += body
    raw = zlib.decompress(idat); out = np.zeros((h, w), np.int32); prev = np.zeros(w, np.int32)
    for y in range(h):
        f = raw[y*(w+1)]; row = np.frombuffer(raw[y*(w+1)+1:(y+1)*(w+1)], np.uint8).astype(np.int32)
        cur = np.zeros(w, np.int32)
        for x in range(w):
            left = cur[x-1] if x else 0; up = prev[x]; ul = prev[x-1] if x else 0
            if f == 0: p = 0
            elif f == 1: p = left
            elif f == 2: p = up
            elif f == 3: p = (left + up) // 2
            else:
                pa, pb, pc = abs(up-ul), abs(left-ul), abs(left+up-2*ul)
                p = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
            cur[x] = (row[x] + p) & 255
        out[y] = cur; prev = cur
    return out
for i in (0, 17, 39):
    assert (png_gray("%s/pngs/%06d.png" % (t, i)) == a[i, :, :, 0]).all(), i
PYEOF'

# --- eval ----------------------------------------------------------------------------------------------------------
E=(eval --ref fashion-mnist@test --kid-subset-size 40 --kid-subsets 10 --threads 2)
E6=("${E[@]}" --max-ref 600)
"$DDPM" "${E6[@]}" --samples "$T/s.npz" --ref-cache "$T/ref.safetensors" --json "$T/e1.json" >"$T/e1.out" 2>"$T/e1.log"
check "eval on the npz exits 0" [ $? -eq 0 ]
checkx "  FID, KID, precision and recall are numbers" \
  '$PY -c "import json,math; d=json.load(open(\"$T/e1.json\")); assert all(math.isfinite(d[k]) for k in (\"fid\",\"kid\",\"kid_std\",\"precision\",\"recall\")); assert d[\"fid\"] > 0 and 0 <= d[\"precision\"] <= 1"'
checkx "  40 samples against 600 reference images, classifier features by default" \
  '[ "$(json "$T/e1.json" "(d[\"num_samples\"], d[\"num_ref\"], d[\"features\"][:11])")" = "(40, 600, '"'"'classifier:'"'"')" ]'
checkx "  stdout has the same JSON" '[ "$(json "$T/e1.out" "d[\"fid\"]")" = "$(json "$T/e1.json" "d[\"fid\"]")" ]'
checkx "  the reference statistics were computed and cached" \
  '[ "$(json "$T/e1.json" "d[\"ref_from_cache\"]")" = False ] && [ -f "$T/ref.safetensors" ]'
"$DDPM" "${E6[@]}" --samples "$T/pngs" --ref-cache "$T/ref.safetensors" --json "$T/e2.json" >/dev/null 2>"$T/e2.log"
check "eval on the PNG folder exits 0" [ $? -eq 0 ]
checkx "  it reused the cache" '[ "$(json "$T/e2.json" "d[\"ref_from_cache\"]")" = True ]'
checkx "  same images, same FID and KID (to 1e-6: the convolutions' rounding may depend on buffer alignment)" \
  '$PY -c "import json; a=json.load(open(\"$T/e1.json\")); b=json.load(open(\"$T/e2.json\")); assert all(abs(a[k]-b[k]) <= 1e-6*abs(a[k]) for k in (\"fid\",\"kid\")) and a[\"precision\"] == b[\"precision\"], (a, b)"'
"$DDPM" "${E[@]}" --max-ref 500 --samples "$T/s.npz" --ref-cache "$T/ref.safetensors" --json "$T/e3.json" >/dev/null 2>"$T/e3.log"
checkx "a cache made for another reference is detected and rebuilt" \
  '[ "$(json "$T/e3.json" "d[\"ref_from_cache\"]")" = False ] && grep -q "different reference.*rebuilding" "$T/e3.log"'
"$DDPM" "${E6[@]}" --samples "$T/s.npz" --metrics kid --json "$T/e4.json" >/dev/null 2>&1
checkx "--metrics kid gives KID alone; the default cache lands in DDPM_CACHE_DIR" \
  '$PY -c "import json; d=json.load(open(\"$T/e4.json\")); assert \"kid\" in d and \"fid\" not in d and \"precision\" not in d" && ls "$T/cache"/ref-*.safetensors >/dev/null'

# --- the Inception Score (issue 18): from the classifier's softmax, no reference needed -----------------------------
"$DDPM" eval --samples "$T/s.npz" --metrics is --is-splits 4 --threads 2 --json "$T/is.json" >/dev/null 2>"$T/is.log"
checkx "--metrics is without --ref gives IS alone, 4 splits" \
  '$PY -c "import json; d=json.load(open(\"$T/is.json\")); assert d[\"is_splits\"] == 4 and 1 <= d[\"is\"] <= 10 and d[\"is_std\"] >= 0 and \"fid\" not in d and d[\"ref\"] is None, d"'
"$DDPM" eval --samples "$T/s.npz" --metrics is --is-splits 4 --threads 2 --batch-size 7 >"$T/is7.json" 2>/dev/null
checkx "  IS does not depend on the feature batch size" \
  '[ "$(json "$T/is.json" "round(d[\"is\"], 6)")" = "$(json "$T/is7.json" "round(d[\"is\"], 6)")" ]'
"$DDPM" eval --samples fashion-mnist@test --max-samples 1000 --metrics is --threads 2 >"$T/isr.json" 2>/dev/null
checkx "real test images (a dataset spec as --samples) score a high IS" \
  '$PY -c "import json; d=json.load(open(\"$T/isr.json\")); assert d[\"num_samples\"] == 1000 and d[\"is\"] > 5, d"'
expect_error "fid without --ref" "--ref is required" "$DDPM" eval --samples "$T/s.npz" --metrics fid,is
expect_error "more IS splits than samples" "is-splits 50: more splits than the 40 samples" "$DDPM" eval --samples "$T/s.npz" --metrics is --is-splits 50

# --- bad input ------------------------------------------------------------------------------------------------------
echo '{"keep": 1}' >"$T/keep.json"
expect_error "missing samples" "no such file" "$DDPM" "${E[@]}" --samples "$T/nope.npz" --json "$T/keep.json"
checkx "  the existing --json file is untouched" '[ "$(cat "$T/keep.json")" = "{\"keep\": 1}" ]'
head -c 300 "$T/s.npz" >"$T/trunc.npz"
expect_error "a truncated npz" "trunc.npz" "$DDPM" "${E[@]}" --samples "$T/trunc.npz" --json "$T/keep.json"
checkx "  the existing --json file is untouched" '[ "$(cat "$T/keep.json")" = "{\"keep\": 1}" ]'
$PY -c "import numpy as np; np.savez('$T/rgb.npz', np.zeros((5, 32, 32, 3), np.uint8))"
expect_error "samples of another size than the reference" "32, 32.*28, 28" "$DDPM" "${E[@]}" --samples "$T/rgb.npz"
$PY -c "import numpy as np; np.savez('$T/f32.npz', np.zeros((5, 28, 28, 1), np.float32))"
expect_error "a float npz" "dtype <f4" "$DDPM" "${E[@]}" --samples "$T/f32.npz"
expect_error "an unknown metric" "unknown metric 'fidd'" "$DDPM" "${E[@]}" --samples "$T/s.npz" --metrics fid,fidd
expect_error "an unknown feature network" "no such file" "$DDPM" "${E[@]}" --samples "$T/s.npz" --features nosuchnet
expect_error "inception without its file says where to get it" "nvlabs-fi-cdn.nvidia.com.*inception-2015-12-05.pt" \
  "$DDPM" "${E[@]}" --samples "$T/s.npz" --features inception
expect_error "a UNet is not a feature network" "not a ddpm.cpp classifier" "$DDPM" "${E[@]}" --samples "$T/s.npz" --features "$M"
expect_error "--json in a missing directory" "does not exist" "$DDPM" "${E[@]}" --samples "$T/s.npz" --json "$T/no/dir/e.json"
mkdir -p "$T/empty"
expect_error "an empty sample folder" "no image files" "$DDPM" "${E[@]}" --samples "$T/empty"
expect_error "an unknown reference" "--ref: .*nosuchdata" "$DDPM" eval --samples "$T/s.npz" --ref nosuchdata
expect_error "sample --format with an unknown value" "--format" "$DDPM" "${S[@]}" --format tiff

# --- nll -----------------------------------------------------------------------------------------------------------
"$DDPM" nll --checkpoint "$M" --num 6 --batch-size 3 --timesteps 8 --threads 2 --json "$T/n.json" >/dev/null 2>"$T/n.log"
check "nll exits 0" [ $? -eq 0 ]
checkx "  bits/dim is finite and positive, with a standard error, stated as an estimate" \
  '$PY -c "import json,math; d=json.load(open(\"$T/n.json\")); assert 0 < d[\"bpd\"] < 20 and d[\"bpd_stderr\"] > 0 and d[\"estimate\"] is True and d[\"kl_terms\"] == 8 and d[\"num\"] == 6 and d[\"data\"] == \"fashion-mnist@test\""'
checkx "  the terms add up to the total" \
  '$PY -c "import json; d=json.load(open(\"$T/n.json\")); assert abs(d[\"prior_bpd\"] + d[\"kl_bpd\"] + d[\"decoder_bpd\"] - d[\"bpd\"]) < 1e-6 * d[\"bpd\"]"'
"$DDPM" nll --checkpoint "$M" --num 6 --batch-size 3 --timesteps 8 --threads 2 --variance fixed_small --json "$T/n2.json" >/dev/null 2>&1
checkx "  fixed_small gives another bound than fixed_large" '[ "$(json "$T/n.json" "d[\"bpd\"]")" != "$(json "$T/n2.json" "d[\"bpd\"]")" ]'
expect_error "nll --conditional on an unconditional model" "unconditional" "$DDPM" nll --checkpoint "$M" --conditional --num 2
expect_error "nll on a missing checkpoint" "nope.safetensors" "$DDPM" nll --checkpoint "$T/nope.safetensors"

# --- train --eval-every --------------------------------------------------------------------------------------------
RUN="$T/run"
"$DDPM" train --preset tiny --steps 4 --batch-size 8 --log-every 2 --sample-every 0 --sample-num 4 --threads 2 \
  --eval-every 2 --eval-samples 16 --eval-sampler ddim --eval-steps 3 --eval-ref "$T/s.npz" --out "$RUN" 2>"$T/train.log"
check "train --eval-every exits 0" [ $? -eq 0 ]
checkx "  metrics.jsonl has an evaluation at steps 2 and 4" \
  '[ "$($PY -c "import json; print([r[\"step\"] for r in map(json.loads, open(\"$RUN/metrics.jsonl\")) if \"fid\" in r])")" = "[2, 4]" ]'
checkx "  each with FID and KID of 16 samples" \
  '$PY -c "import json; r=[r for r in map(json.loads, open(\"$RUN/metrics.jsonl\")) if \"fid\" in r]; assert all(x[\"num_samples\"] == 16 and x[\"fid\"] > 0 and \"kid\" in x for x in r)"'
checkx "  best.safetensors holds the best FID so far" \
  '$PY - "$RUN" <<"PYEOF"
import json, struct, sys
run = sys.argv[1]
recs = [r for r in map(json.loads, open(run + "/metrics.jsonl")) if "fid" in r]
raw = open(run + "/best.safetensors", "rb").read(); n, = struct.unpack("<Q", raw[:8]); meta = json.loads(raw[8:8+n])["__metadata__"]
best = min(recs, key=lambda r: r["fid"])
assert abs(float(meta["fid"]) - best["fid"]) < 1e-5 * best["fid"] and int(meta["step"]) == best["step"], (meta, best)
PYEOF'
"$DDPM" sample --checkpoint "$RUN/best.safetensors" --num 2 --sampler ddim --steps 2 --out "$T/best.png" >/dev/null 2>&1
check "  best.safetensors samples" [ -f "$T/best.png" ]
checkx "  info --run reports the best FID" '[ "$("$DDPM" info --run "$RUN" | $PY -c "import json,sys; print(json.load(sys.stdin)[\"best_fid\"][\"fid\"] > 0)")" = True ]'
expect_error "train --eval-every with a bad --eval-steps" "eval-sampler/--eval-steps" \
  "$DDPM" train --preset tiny --steps 2 --eval-every 1 --eval-sampler ddim --eval-steps 5000 --out "$T/run2"
checkx "  and nothing was written" '[ ! -e "$T/run2" ]'
expect_error "train --eval-features that does not exist" "eval-features" \
  "$DDPM" train --preset tiny --steps 2 --eval-every 1 --eval-features "$T/none.safetensors" --out "$T/run3"

# --- classifier ----------------------------------------------------------------------------------------------------
"$DDPM" classifier eval --model "$CLS" --threads 2 >"$T/c.json" 2>/dev/null
checkx "classifier eval re-measures the shipped file's recorded accuracy (>= 0.92)" \
  '$PY -c "import json; d=json.load(open(\"$T/c.json\")); assert d[\"accuracy\"] >= 0.92 and abs(d[\"accuracy\"] - d[\"recorded_test_accuracy\"]) < 2e-4, d"'
"$DDPM" classifier train --data fashion-mnist@test --test fashion-mnist@test --epochs 1 --feature-dim 32 --threads 2 \
  --out "$T/c.safetensors" >"$T/ct.json" 2>"$T/ct.log"
check "classifier train (1 epoch on 10k images) exits 0" [ $? -eq 0 ]
checkx "  its file works as eval --features" \
  '"$DDPM" "${E6[@]}" --samples "$T/s.npz" --features "$T/c.safetensors" --metrics fid --no-ref-cache >"$T/e5.json" 2>/dev/null && [ "$(json "$T/e5.json" "d[\"features\"][:11]")" = "classifier:" ]'
expect_error "classifier train on unlabelled images" "test split" "$DDPM" classifier train --data "images:$T/pngs"

echo "passed $pass, failed $fail"
[ "$fail" -eq 0 ]
