#!/usr/bin/env bash
# test_data_cli.sh — "bring your own images" end to end through the `ddpm` binary: image folders (PNG and JPEG,
# gray and RGB, nested class folders), the decoded-image cache and its invalidation, CIFAR-10 in the official
# layout, TensorBoard event files read back by an independent reader (tests/tb_read.py: google.protobuf +
# crcmod), `ddpm info --run`, resume with a changed config, --config NAME, `cmake --install` and --version, and
# every bad input of the issue (one-line error, non-zero exit, nothing trained on wrong data).
# Usage: tests/test_data_cli.sh path/to/ddpm path/to/make_image_tree [build-dir]
set -u
DDPM=${1:?usage: test_data_cli.sh path/to/ddpm path/to/make_image_tree [build-dir]}
MKTREE=${2:?usage: test_data_cli.sh path/to/ddpm path/to/make_image_tree [build-dir]}
BUILD=${3:-$(dirname "$DDPM")}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/ddpm-data.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$HERE/lib.sh"
json() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

# A tiny model on the generated tree: 5 images in cat/ (a.png RGB 40x30, sub/b.jpg RGB 32x32) and dog/ (c.png gray
# 36x36, d.jpg gray 50x34, e.png RGBA 32x48); .hidden/ and notes.txt are ignored.
"$MKTREE" "$T/tree" || { echo "make_image_tree failed"; exit 1; }
T1=(train --preset tiny --batch-size 4 --log-every 2 --sample-every 2 --sample-num 4 --threads 2)
TR=("${T1[@]}" --steps 4)

# --- image folder with class labels, RGB ---------------------------------------------------------------------
RUN="$T/run"
"$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 3 --num-classes 2 --out "$RUN" 2>"$T/run.log"
check "train on images:DIR (RGB, 2 classes) exits 0" [ $? -eq 0 ]
check "  it decoded the folder into the run's cache" grep -q "decoded 5 images into $RUN/data-cache.bin" "$T/run.log"
checkx "  5 images, 3 channels in the log" 'grep -q "on images:$T/tree (5 images)" "$T/run.log"'
checkx "  classes.json maps cat=0, dog=1" '[ "$(json "$RUN/classes.json" "d[\"classes\"]")" = "['"'"'cat'"'"', '"'"'dog'"'"']" ]'
checkx "  config.toml records the folder" 'grep -Eq "^data = .images:$T/tree.$" "$RUN/config.toml"'

# --- TensorBoard: read back by an independent reader ----------------------------------------------------------
if /usr/bin/python3 -c 'import google.protobuf, crcmod' 2>/dev/null; then
  /usr/bin/python3 "$HERE/tb_read.py" "$RUN/tensorboard" >"$T/tb.json"
  check "tensorboard: the event file reads back with valid CRCs" [ $? -eq 0 ]
  checkx "  file_version brain.Event:2, no torn tail" \
    '[ "$(json "$T/tb.json" "(d[\"file_version\"], d[\"torn_tail\"])")" = "('"'"'brain.Event:2'"'"', False)" ]'
  checkx "  train/loss at steps 2 and 4 equal metrics.jsonl (as float32)" '/usr/bin/python3 - "$T/tb.json" "$RUN/metrics.jsonl" <<"EOF"
import json, struct, sys
tb = json.load(open(sys.argv[1]))
m = [json.loads(l) for l in open(sys.argv[2])]
f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
want = [[r["step"], f32(r["loss"])] for r in m]
assert tb["scalars"]["train/loss"] == want, (tb["scalars"]["train/loss"], want)
for k in ("train/lr", "train/grad_norm", "train/images_per_sec"):
    assert [s for s, _ in tb["scalars"][k]] == [2, 4], k
# loss by quarter of the t range: logged for the quarters the batch hit, each matching metrics.jsonl
for q in range(4):
    got = tb["scalars"].get("train/loss_q%d" % q, [])
    assert got == [[r["step"], f32(r["loss_q%d" % q])] for r in m if "loss_q%d" % q in r], q
EOF'
  checkx "  sample grids at steps 2 and 4, PNG bytes equal the files in samples/" '/usr/bin/python3 - "$T/tb.json" "$RUN/samples" <<"EOF"
import hashlib, json, sys
tb = json.load(open(sys.argv[1]))
imgs = tb["images"]["samples"]
assert [i[0] for i in imgs] == [2, 4], imgs
for step, h, w, cs, sha in imgs:
    png = open("%s/step_%07d.png" % (sys.argv[2], step), "rb").read()
    assert hashlib.sha256(png).hexdigest() == sha and cs == 3, step
EOF'
  cp "$RUN"/tensorboard/* "$T/bad.tfevents" && /usr/bin/python3 -c '
import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[40] ^= 1; open(p, "wb").write(b)' "$T/bad.tfevents"
  check "  (the reader does check: a flipped byte is a CRC mismatch)" bash -c "! /usr/bin/python3 '$HERE/tb_read.py' '$T/bad.tfevents' 2>/dev/null >/dev/null"
else
  echo "# skipped the TensorBoard read-back: /usr/bin/python3 lacks google.protobuf or crcmod (scripts/setup.sh installs them)"
fi
"$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 3 --out "$T/notb" --no-tensorboard 2>/dev/null
check "--no-tensorboard writes no event file" [ ! -e "$T/notb/tensorboard" ]

# --- ddpm info --run ------------------------------------------------------------------------------------------
"$DDPM" info --run "$RUN" >"$T/info.json"
check "info --run exits 0" [ $? -eq 0 ]
checkx "  step 4 of 4, last loss, images/s, 2 grids, 1 event file, classes" '/usr/bin/python3 - "$T/info.json" <<"EOF"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["step"] == 4 and d["steps_planned"] == 4 and d["last_logged_step"] == 4, d
assert d["last_loss"] > 0 and d["images_per_sec"] > 0 and d["best_fid"] is None, d
assert d["sample_grids"] == 2 and d["tensorboard_files"] == 1 and d["classes"] == ["cat", "dog"], d
EOF'
expect_error "info --run on a folder that is not a run" "not a run directory" "$DDPM" info --run "$T/tree"

# --- resume: the run's own config, changes refused with the differences listed ---------------------------------
"$DDPM" train --out "$RUN" --resume --steps 6 --threads 2 2>"$T/res.log"
check "--resume with only --steps continues the run's config (folder, classes)" grep -q "resuming .* at step 4" "$T/res.log"
check "  and reuses the cache" grep -q "using image cache $RUN/data-cache.bin" "$T/res.log"
before=$(sha256sum "$RUN/checkpoint.safetensors")
expect_error "--resume with another lr and batch size lists both" \
  'train.batch_size: 4 -> 8; train.lr: 0.0002 -> 0.001' "$DDPM" train --out "$RUN" --resume --steps 8 --lr 1e-3 --batch-size 8
check "  the refused resume left the checkpoint as it was" [ "$before" = "$(sha256sum "$RUN/checkpoint.safetensors")" ]

# --- grayscale, and the cache: reuse, invalidation ------------------------------------------------------------
C="$T/cache.bin"
"$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 1 --cache "$C" --out "$T/g1" 2>"$T/g1.log"
check "grayscale (--channels 1) with --cache exits 0" [ $? -eq 0 ]
"$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 1 --cache "$C" --out "$T/g2" 2>"$T/g2.log"
check "  a second run reuses the cache" grep -q "using image cache $C (5 images of 1x28x28)" "$T/g2.log"
losses() { /usr/bin/python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1])])' "$1"; }
check "  and trains on the same pixels (identical losses)" [ "$(losses "$T/g1/metrics.jsonl")" = "$(losses "$T/g2/metrics.jsonl")" ]
"$MKTREE" --solid "$T/tree/dog/c.png" 36 36 1 200
"$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 1 --cache "$C" --out "$T/g3" 2>"$T/g3.log"
check "  a changed file makes the cache stale: named, rebuilt" grep -q "cache $C is stale: .*dog/c.png changed.*; rebuilding" "$T/g3.log"
check "  and the run trained on the new pixels" [ "$(losses "$T/g1/metrics.jsonl")" != "$(losses "$T/g3/metrics.jsonl")" ]
"$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 3 --cache "$C" --out "$T/g4" 2>"$T/g4.log"
check "  other channels: the cache is rebuilt, not used" grep -q "cache $C is stale: .*; rebuilding" "$T/g4.log"

# --- bad input: one line naming the file, nothing trained -----------------------------------------------------
mkdir -p "$T/empty/sub"
expect_error "a folder with no images" "$T/empty: no PNG or JPEG files" "$DDPM" "${TR[@]}" --data "images:$T/empty" --out "$T/o1"
check "  no run directory left behind" [ ! -e "$T/o1" ]
expect_error "a missing folder" "$T/nope" "$DDPM" "${TR[@]}" --data "images:$T/nope" --out "$T/o2"
expect_error_after_progress "images smaller than the model" "a.png: image is 40x30, its shorter side 30 is below the size 32 (--allow-upscale" \
  "$DDPM" "${TR[@]}" --data "images:$T/tree" --channels 3 --image-size 32 --out "$T/o3"
check "  nothing trained" [ ! -e "$T/o3/checkpoint.safetensors" ]
"$DDPM" "${T1[@]}" --data "images:$T/tree" --channels 3 --image-size 32 --allow-upscale --steps 1 --out "$T/up" 2>/dev/null
check "  --allow-upscale trains on them" [ -f "$T/up/checkpoint.safetensors" ]
cp -r "$T/tree" "$T/badtree" && "$MKTREE" --truncated-jpeg "$T/badtree/dog/zz.jpg"
expect_error_after_progress "a truncated JPEG stops the run before training" "$T/badtree/dog/zz.jpg: truncated JPEG" \
  "$DDPM" "${TR[@]}" --data "images:$T/badtree" --out "$T/o4"
check "  nothing trained, no directory left" [ ! -e "$T/o4" ]
"$DDPM" "${T1[@]}" --data "images:$T/badtree" --skip-bad-images --steps 1 --out "$T/skip" 2>"$T/skip.log"
check "--skip-bad-images reports the file and trains on the other 5" \
  bash -c "grep -q 'dog/zz.jpg' '$T/skip.log' && grep -q '(5 images)' '$T/skip.log'"
expect_error_after_progress "class folders vs --num-classes" "has 2 class folders (cat, dog) but --num-classes is 3" \
  "$DDPM" "${TR[@]}" --data "images:$T/tree" --num-classes 3 --out "$T/o5"
cp "$RUN/checkpoint.safetensors" "$T/ck.safetensors"
expect_error "--cache pointing at a file that is not a cache" "ck.safetensors: exists and is not a ddpm image cache" \
  "$DDPM" "${TR[@]}" --data "images:$T/tree" --cache "$T/ck.safetensors" --out "$T/o6"
check "  that file is untouched" cmp -s "$RUN/checkpoint.safetensors" "$T/ck.safetensors"
expect_error "images: without a directory" "images needs a directory" "$DDPM" "${TR[@]}" --data images: --out "$T/o7"

# --- CIFAR-10 in the official binary layout -------------------------------------------------------------------
mkdir -p "$T/cifar"
/usr/bin/python3 - "$T/cifar" <<"EOF"
import sys
for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
    rec = bytearray(3073 * 10000)
    for r in range(10000):
        rec[r * 3073] = r % 10                                   # label, then 3072 pixels (R, G, B planes)
        rec[r * 3073 + 1 + (r % 3072)] = 255
    open(sys.argv[1] + "/" + name, "wb").write(rec)
EOF
"$DDPM" train --preset tiny --image-size 32 --channels 3 --num-classes 10 --data "cifar10:$T/cifar" --steps 1 \
  --batch-size 4 --sample-num 10 --threads 2 --out "$T/c10" 2>"$T/c10.log"
check "cifar10:DIR trains (50000 images, 10 classes)" grep -q "on cifar10:$T/cifar (50000 images)" "$T/c10.log"
head -c 1000 "$T/cifar/data_batch_3.bin" >"$T/short.bin" && mv "$T/short.bin" "$T/cifar/data_batch_3.bin"
expect_error "a CIFAR-10 file of the wrong size" "data_batch_3.bin" \
  "$DDPM" train --preset tiny --image-size 32 --channels 3 --data "cifar10:$T/cifar" --out "$T/o8"

# --- configs: presets by name; install; --version -------------------------------------------------------------
"$DDPM" train --config tiny --data "images:$T/tree" --steps 1 --batch-size 2 --sample-num 1 --threads 2 --out "$T/cfg" 2>/dev/null
check "--config tiny finds configs/tiny.toml" grep -Eq "^preset = .tiny.$" "$T/cfg/config.toml"
expect_error "--config with an unknown name" "no preset config of that name" "$DDPM" train --config nosuch --out "$T/o9"
check "--version names the LibTorch" bash -c "'$DDPM' --version | grep -q '^LibTorch [0-9]'"
if [ -f "$BUILD/cmake_install.cmake" ]; then
  cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null
  check "cmake --install: bin/ddpm and share/ddpm/configs" \
    bash -c "[ -x '$T/prefix/bin/ddpm' ] && [ -f '$T/prefix/share/ddpm/configs/fmnist-small.toml' ]"
  check "  the installed ddpm runs (--version)" bash -c "'$T/prefix/bin/ddpm' --version | grep -q '^ddpm [0-9]'"
  "$T/prefix/bin/ddpm" train --config tiny --data "images:$T/tree" --steps 1 --batch-size 2 --sample-num 1 --threads 2 \
    --out "$T/inst" 2>/dev/null
  check "  and finds its presets in share/ddpm/configs (--config tiny)" grep -Eq "^preset = .tiny.$" "$T/inst/config.toml"
fi

echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
