#!/usr/bin/env bash
# test_cli.sh — end-to-end tests of the `ddpm` binary: a short real training run on Fashion-MNIST, sampling,
# export, resume, and every bad input of the core issue (one-line error, non-zero exit, outputs untouched).
# Usage: tests/test_cli.sh path/to/ddpm
set -u
DDPM=${1:?usage: test_cli.sh path/to/ddpm}
T=$(mktemp -d "${TMPDIR:-/tmp}/ddpm-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"

# png_size FILE -> "W H" read from the IHDR chunk (independent of our code: Python's stdlib).
png_size() { /usr/bin/python3 -c '
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", b[16:24])
# decode fully: every IDAT must inflate
data = b""; i = 8
while i < len(b):
    n = struct.unpack(">I", b[i:i+4])[0]; typ = b[i+4:i+8]
    if typ == b"IDAT": data += b[i+8:i+8+n]
    i += 12 + n
zlib.decompress(data)
print(w, h)' "$1"; }

snapshot() { (cd "$1" && find . -type f -exec sha256sum {} + | sort); }

# --- help and info ------------------------------------------------------------------------------------------
check "ddpm --help exits 0" "$DDPM" --help >/dev/null
check "ddpm train --help lists --resume" bash -c "'$DDPM' train --help | grep -q -- --resume"
check "info --preset fmnist reports 6,469,889 parameters" \
  bash -c "'$DDPM' info --preset fmnist | grep -q '\"parameters\": 6469889'"
check "info --preset cifar10 reports 35,746,307 parameters" \
  bash -c "'$DDPM' info --preset cifar10 | grep -q '\"parameters\": 35746307'"
check "info --preset dit-fmnist reports 1,057,444 parameters and 0.35 GFLOP" \
  bash -c "'$DDPM' info --preset dit-fmnist | grep -q '\"parameters\": 1057444' && '$DDPM' info --preset dit-fmnist | grep -q '\"forward_gflops_per_image\": 0.3496'"
check "train --help lists the DiT presets" bash -c "'$DDPM' train --help | grep -q 'dit-fmnist, dit-cifar'"

# --- a DiT through the same commands: train (configs/dit-fmnist.toml), info, sample, inpaint, nll, --nproc 2 ---
DIT="$T/dit"
"$DDPM" train --config "$(dirname "$0")/../configs/dit-fmnist.toml" --out "$DIT" --steps 2 --batch-size 4 \
  --sample-num 4 --sample-every 0 --threads 2 2>"$T/dit.log"
check "train --config configs/dit-fmnist.toml exits 0" [ $? -eq 0 ]
check "the DiT run's config says arch dit" grep -Eq '^ *arch = .dit.$' "$DIT/config.toml"
check "info --checkpoint of the DiT reports its parameters" \
  bash -c "'$DDPM' info --checkpoint '$DIT/checkpoint.safetensors' | grep -q '\"parameters\": 1057444'"
"$DDPM" sample --checkpoint "$DIT/checkpoint.safetensors" --num 2 --steps 3 --out "$T/dit.png" >/dev/null 2>&1
check "sample from the DiT writes a 2-image grid" [ -s "$T/dit.png" ]
# ... and the restoration verbs, the likelihood and the multi-process trainer take it the same way.
"$DDPM" inpaint --checkpoint "$DIT/checkpoint.safetensors" --data fashion-mnist --index 0 --mask-shape center \
  --steps 3 --out "$T/dit-inpaint.png" --json "$T/dit-inpaint.json" --threads 2 >/dev/null 2>"$T/dit-inpaint.log"
check "inpaint with the DiT writes its grid and PSNR" bash -c "[ -s '$T/dit-inpaint.png' ] && grep -q psnr '$T/dit-inpaint.json'"
"$DDPM" nll --checkpoint "$DIT/checkpoint.safetensors" --num 2 --batch-size 2 --timesteps 8 --threads 2 \
  --json "$T/dit-nll.json" >/dev/null 2>&1
check "nll of the DiT reports bits/dim" grep -q "\"bpd\"" "$T/dit-nll.json"
"$DDPM" train --config "$(dirname "$0")/../configs/dit-fmnist.toml" --out "$T/dit-np2" --steps 2 --batch-size 4 \
  --sample-num 4 --sample-every 0 --threads 1 --nproc 2 --dist-timeout 60 2>"$T/dit-np2.log"
if grep -q "no c10d backend\|has no Gloo" "$T/dit-np2.log"; then echo "  (built without Gloo: the DiT --nproc 2 check is skipped)"
else check "train --nproc 2 with the DiT ends with identical replicas" grep -q "all 2 ranks hold identical weights" "$T/dit-np2.log"; fi
expect_error "a UNet key in a DiT config" "model.ch does not apply to model.arch = 'dit'" \
  bash -c "printf 'preset = \"dit-fmnist\"\n[model]\nch = 64\n' >'$T/bad-dit.toml'; '$DDPM' train --config '$T/bad-dit.toml' --out '$T/bad-dit' --steps 1"

# --- train a few steps on the real Fashion-MNIST ------------------------------------------------------------
RUN="$T/run"
"$DDPM" train --preset tiny --data fashion-mnist --out "$RUN" --steps 3 --batch-size 4 --log-every 1 \
  --sample-num 4 --threads 2 2>"$T/train.log"
check "train exits 0" [ $? -eq 0 ]
check "run directory has checkpoint, config, metrics, final grid" \
  test -s "$RUN/checkpoint.safetensors" -a -s "$RUN/config.toml" -a -s "$RUN/metrics.jsonl" -a -s "$RUN/samples/step_0000003.png"
check "metrics.jsonl has 3 records" [ "$(wc -l <"$RUN/metrics.jsonl")" -eq 3 ]
check "plain log lines when not a terminal" grep -q "^step 3/3 | loss" "$T/train.log"

# --- the checkpoint is a spec-conformant safetensors file (independent stdlib reader) -----------------------
check "checkpoint layout follows the safetensors spec" /usr/bin/python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8+n].decode("utf-8"))
md = h.pop("__metadata__")
assert md["format"] == "ddpm.cpp" and int(md["step"]) == 3 and json.loads(md["config"])["preset"] == "tiny"
size = {"F32": 4, "F64": 8, "I64": 8, "U8": 1}
spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k, v) for k, v in h.items())
pos = 0
for b0, b1, k, v in spans:
    assert b0 == pos, k
    cnt = 1
    for d in v["shape"]: cnt *= d
    assert b1 - b0 == cnt * size[v["dtype"]], k
    pos = b1
assert pos == len(b) - 8 - n
names = set(h)
assert "model.conv_in.weight" in names and "ema.conv_in.weight" in names and "optim.exp_avg.conv_in.weight" in names
' "$RUN/checkpoint.safetensors"

# --- sample -------------------------------------------------------------------------------------------------
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --num 4 --steps 10 --seed 3 --out "$T/grid.png" \
  --out-dir "$T/imgs" >"$T/sample.json" 2>/dev/null
check "sample exits 0 and reports NFE" grep -q '"nfe":10' "$T/sample.json"
check "grid PNG decodes as 62x62 (2x2 of 28x28, 2px padding)" [ "$(png_size "$T/grid.png")" = "62 62" ]
check "one PNG per image, 28x28" [ "$(png_size "$T/imgs/000003.png")" = "28 28" ]
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --num 4 --steps 10 --seed 3 --out "$T/grid2.png" --batch-size 3 >/dev/null 2>&1
check "same seed gives the same images (also across --batch-size)" cmp -s "$T/grid.png" "$T/grid2.png"
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --num 4 --steps 10 --seed 4 --out "$T/grid3.png" >/dev/null 2>&1
check "another seed gives other images" bash -c "! cmp -s '$T/grid.png' '$T/grid3.png'"
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --num 2 --steps 10 --scale 2 --out "$T/big.png" >/dev/null 2>&1
check "--scale enlarges the grid" [ "$(png_size "$T/big.png")" = "124 64" ]

# --- export (weights only) and sample from it ---------------------------------------------------------------
"$DDPM" export --checkpoint "$RUN/checkpoint.safetensors" --out "$T/w.safetensors" 2>/dev/null
check "export writes a smaller weights-only file" [ "$(stat -c %s "$T/w.safetensors")" -lt "$(stat -c %s "$RUN/checkpoint.safetensors")" ]
"$DDPM" sample --checkpoint "$T/w.safetensors" --num 4 --steps 10 --seed 3 --out "$T/grid4.png" >/dev/null 2>&1
check "weights-only file samples the same images" cmp -s "$T/grid.png" "$T/grid4.png"
# (a run whose weights move far in 3 steps: no warm-up, a large rate, so that the EMA lags visibly)
"$DDPM" train --preset tiny --data fashion-mnist --out "$T/fast" --steps 3 --batch-size 4 --warmup 0 --lr 0.01 \
  --sample-every 0 --sample-num 2 --threads 2 >/dev/null 2>&1
"$DDPM" sample --checkpoint "$T/fast/checkpoint.safetensors" --num 2 --steps 10 --seed 3 --format npz --out "$T/ema.npz" >/dev/null 2>&1
"$DDPM" sample --checkpoint "$T/fast/checkpoint.safetensors" --num 2 --steps 10 --seed 3 --format npz --out "$T/raw.npz" \
  --weights raw >"$T/raw.json" 2>/dev/null
check "--weights raw samples the training weights: other samples, reported" \
  bash -c "grep -q '\"weights\":\"raw\"' '$T/raw.json' && ! cmp -s '$T/ema.npz' '$T/raw.npz'"
expect_error "--weights raw on a weights-only file" "no training weights (model.*) in this file" \
  "$DDPM" sample --checkpoint "$T/w.safetensors" --weights raw --num 1 --out "$T/x.png"

# --- fast samplers, prediction targets, classes and guidance (issue 3) ----------------------------------------
for spec in "ddim 4 4" "dpm++2m 4 4" "dpm++3m 4 4" "euler 4 4" "heun 4 7" "ddpm 4 4" "edm-sde 4 7" "vp-sde 4 4" "pc 4 7"; do
  set -- $spec
  "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler "$1" --steps "$2" --num 2 --out "$T/s_$2.png" \
    >"$T/s.json" 2>"$T/s.err"
  check "sample --sampler $1 --steps $2 reports $3 NFE" grep -q "\"nfe\":$3," "$T/s.json"
  [ "$1" = heun ] && check "heun says it spends 2 NFE per step" grep -q "7 NFE per image" "$T/s.err"
done
# The score-SDE samplers (issue 21): their options, and the NFE they report with them.
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler pc --steps 4 --corrector-steps 2 --snr 0.1 \
  --predictor ancestral --num 2 --out "$T/pc.png" >"$T/s.json" 2>"$T/s.err"
check "pc --corrector-steps 2 --steps 4 reports 4 + 2·3 = 10 NFE" grep -q '"nfe":10,' "$T/s.json"
check "pc reports its corrector options" grep -q '"predictor":"ancestral"' "$T/s.json"
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler edm-sde --steps 4 --s-churn 10 --s-tmin 0 \
  --s-tmax inf --s-noise 1 --num 2 --seed 3 --out "$T/edm1.png" >"$T/s.json" 2>/dev/null
check "edm-sde takes --s-tmax inf and reports 7 NFE" grep -q '"nfe":7,.*"s_tmax":"inf"' "$T/s.json"
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler edm-sde --steps 4 --s-churn 0 --num 2 --seed 3 \
  --out "$T/edm0.png" >/dev/null 2>&1
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler heun --steps 4 --num 2 --seed 3 \
  --out "$T/heun0.png" >/dev/null 2>&1
check "edm-sde --s-churn 0 samples heun's images" cmp -s "$T/edm0.png" "$T/heun0.png"
check "edm-sde with churn samples others" bash -c "! cmp -s '$T/edm1.png' '$T/heun0.png'"
"$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler ddim --eta 1 --spacing trailing --steps 5 --num 2 \
  --out "$T/ddim.png" >"$T/s.json" 2>/dev/null
check "ddim with --eta and --spacing trailing" grep -q '"spacing":"trailing"' "$T/s.json"
COND="$T/cond"
"$DDPM" train --preset tiny --data fashion-mnist --out "$COND" --steps 2 --batch-size 4 --num-classes 10 \
  --prediction v --sample-num 20 --threads 2 2>"$T/cond.log"
check "class-conditional v-prediction training exits 0" [ $? -eq 0 ]
check "its training grid has one row per class" [ "$(png_size "$COND/samples/step_0000002.png")" = "62 302" ]
"$DDPM" sample --checkpoint "$COND/checkpoint.safetensors" --class all --num 30 --guidance 2 --sampler dpm++2m \
  --steps 4 --out "$T/classes.png" >"$T/s.json" 2>/dev/null
check "sample --class all --num 30: 10 rows of 3" [ "$(png_size "$T/classes.png")" = "92 302" ]
check "guidance doubles the forward batch and says so" grep -q '"forward_images_per_image":8' "$T/s.json"
"$DDPM" sample --checkpoint "$COND/checkpoint.safetensors" --class 3 --num 2 --steps 4 --sampler euler \
  --out "$T/c3.png" >"$T/s.json" 2>/dev/null
check "sample --class 3" grep -q '"class":"3"' "$T/s.json"

# --- noise --------------------------------------------------------------------------------------------------
"$DDPM" noise --data fashion-mnist --index 0 --out "$T/noise.png" --scale 1 2>/dev/null
check "noise writes a row of 10 images" [ "$(png_size "$T/noise.png")" = "302 32" ]
"$DDPM" noise --image "$T/imgs/000000.png" --schedule cosine --t 0,500,999 --scale 2 --out "$T/noise2.png" 2>/dev/null
check "noise from a PNG with --t and --scale" [ "$(png_size "$T/noise2.png")" = "184 64" ]

# --- resume finishes the run --------------------------------------------------------------------------------
"$DDPM" train --preset tiny --data fashion-mnist --out "$RUN" --steps 5 --batch-size 4 --log-every 1 \
  --sample-num 4 --resume 2>"$T/resume.log"
check "--resume continues from step 3 to 5" grep -q "resuming .* at step 3" "$T/resume.log"
check "resumed checkpoint is at step 5" bash -c "'$DDPM' info --checkpoint '$RUN/checkpoint.safetensors' | grep -q '\"step\": 5'"

# --- bad input: one line, non-zero exit, nothing damaged -----------------------------------------------------
before=$(snapshot "$RUN")
mkdir -p "$T/idx-trunc" "$T/idx-magic"
head -c 1000 /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz >"$T/idx-trunc/train-images-idx3-ubyte.gz"
printf '\x00\x00\x08\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00' >"$T/idx-magic/train-images-idx3-ubyte"
/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes([0,0,8,3, 0,0,0,5, 0,0,0,28, 0,0,0,28]) + bytes(100))' \
  >"$T/idx-magic/../idx-size-train-images"
mkdir -p "$T/idx-size" && mv "$T/idx-size-train-images" "$T/idx-size/train-images-idx3-ubyte"
printf '[train]\nbogus = 1\n' >"$T/bad.toml"
head -c 5000 "$RUN/checkpoint.safetensors" >"$T/trunc.safetensors"
touch "$T/afile"
TR=(train --preset tiny --steps 2 --batch-size 2)
expect_error "missing IDX directory"       "not a directory"     "$DDPM" "${TR[@]}" --data mnist:"$T/nope" --out "$T/o1"
expect_error "truncated gzip IDX"          "gzip"                "$DDPM" "${TR[@]}" --data mnist:"$T/idx-trunc" --out "$T/o1"
expect_error "wrong IDX magic"             "wrong magic"         "$DDPM" "${TR[@]}" --data mnist:"$T/idx-magic" --out "$T/o1"
expect_error "IDX size mismatch"           "size mismatch"       "$DDPM" "${TR[@]}" --data mnist:"$T/idx-size" --out "$T/o1"
expect_error "unknown preset"              "unknown preset"      "$DDPM" train --preset huge --out "$T/o1"
expect_error "unknown flag"                "bogus"               "$DDPM" train --bogus 1
expect_error "unknown config key"          "unknown key 'train.bogus'" "$DDPM" train --config "$T/bad.toml" --out "$T/o1"
expect_error "malformed number"            "steps"               "$DDPM" train --steps 12x --out "$T/o1"
expect_error "malformed float"             "lr"                  "$DDPM" train --lr fast --out "$T/o1"
expect_error "zero steps"                  "steps must be positive" "$DDPM" train --preset tiny --steps 0 --out "$T/o1"
expect_error "negative batch size"         "batch_size must be positive" "$DDPM" train --preset tiny --batch-size -4 --out "$T/o1"
expect_error "dataset does not fit model"  "model expects 3x32x32" "$DDPM" train --preset cifar10 --steps 1 --out "$T/o1"
expect_error "unwritable output directory" "cannot create directory" "$DDPM" "${TR[@]}" --out "$T/afile/run"
expect_error "existing run without --resume" "already holds a run" "$DDPM" "${TR[@]}" --out "$RUN"
expect_error "not a checkpoint"            "not a valid safetensors" "$DDPM" sample --checkpoint "$T/grid.png" --out "$T/x.png"
expect_error "truncated checkpoint"        "truncated"           "$DDPM" sample --checkpoint "$T/trunc.safetensors" --out "$T/x.png"
expect_error "missing checkpoint"          "cannot open"          "$DDPM" sample --checkpoint "$T/none.safetensors" --out "$T/x.png"
# --precision bf16 on a CPU without native bf16 (masked with DDPM_CPU_ISA_MAX): refused in one line naming the
# CPU, nothing written; --force-precision runs it (correct, not fast).
expect_error "sample --precision bf16 on a CPU without bf16" "no native bf16" \
  env DDPM_CPU_ISA_MAX=avx2 "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --num 2 --steps 4 --precision bf16 --out "$T/bf16.png"
check "  and writes nothing" [ ! -e "$T/bf16.png" ]
expect_error "train --precision bf16 on a CPU without bf16" "no native bf16" \
  env DDPM_CPU_ISA_MAX=avx2 "$DDPM" train --preset tiny --steps 1 --precision bf16 --out "$T/bf16run"
env DDPM_CPU_ISA_MAX=avx2 "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --num 2 --steps 4 --precision bf16 \
  --force-precision --out "$T/bf16.png" >/dev/null 2>&1
check "--force-precision samples anyway" [ "$(png_size "$T/bf16.png")" = "62 32" ]
expect_error "sample --precision fp16" "precision" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --precision fp16
expect_error "sample into missing dir"     "does not exist"      "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --out "$T/no/dir/x.png"
expect_error "unknown sampler"             "sampler"             "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler plms --out "$T/x.png"
expect_error "steps beyond T"              "outside \[1, 1000\]" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler ddim --steps 2000 --out "$T/x.png"
expect_error "eta on a non-ddim sampler"   "ddim sampler only"   "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler dpm++2m --eta 0.5 --out "$T/x.png"
expect_error "rho without karras spacing"  "karras spacing only" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler ddim --rho 5 --out "$T/x.png"
expect_error "edm-sde negative churn"      "s-churn must be >= 0" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler edm-sde --s-churn -1 --out "$T/x.png"
expect_error "edm-sde s-tmax below s-tmin" "must be >= --s-tmin" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler edm-sde --s-tmin 2 --out "$T/x.png"
expect_error "vp-sde with an edm-sde flag" "s-churn applies to the edm-sde sampler only" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler vp-sde --s-churn 5 --out "$T/x.png"
expect_error "pc with snr 0"               "snr must be a positive number" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler pc --snr 0 --out "$T/x.png"
expect_error "pc negative corrector steps" "corrector-steps must be >= 0" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler pc --corrector-steps -2 --out "$T/x.png"
expect_error "heun with a pc flag"         "snr applies to the pc sampler only" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --sampler heun --snr 0.2 --out "$T/x.png"
expect_error "unknown spacing"             "spacing"             "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --spacing cubic --out "$T/x.png"
expect_error "--class on an unconditional model" "unconditional" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --class 1 --out "$T/x.png"
expect_error "--guidance on an unconditional model" "class-conditional" "$DDPM" sample --checkpoint "$RUN/checkpoint.safetensors" --guidance 1 --out "$T/x.png"
expect_error "class out of range"          "\[0, 9\]"            "$DDPM" sample --checkpoint "$COND/checkpoint.safetensors" --class 10 --out "$T/x.png"
expect_error "--class all with a bad --num" "multiple of the 10" "$DDPM" sample --checkpoint "$COND/checkpoint.safetensors" --class all --num 15 --out "$T/x.png"
expect_error "unknown prediction target"   "prediction"          "$DDPM" train --preset tiny --prediction score --out "$T/o1"
expect_error "resume with another prediction target" 'diffusion.prediction: "v" -> "eps"' \
  "$DDPM" train --preset tiny --data fashion-mnist --out "$COND" --steps 3 --batch-size 4 --num-classes 10 --prediction eps --resume
expect_error "resume onto a corrupt checkpoint" "not a valid safetensors" \
  bash -c "mkdir -p '$T/corrupt' && cp '$T/trunc.safetensors' '$T/corrupt/checkpoint.safetensors' && \
           '$DDPM' train --preset tiny --steps 2 --batch-size 2 --out '$T/corrupt' --resume"
check "failed commands left the run directory untouched" [ "$before" = "$(snapshot "$RUN")" ]
check "failed commands created no output directory" [ ! -e "$T/o1" ]
check "corrupt checkpoint was not overwritten" cmp -s "$T/trunc.safetensors" "$T/corrupt/checkpoint.safetensors"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
