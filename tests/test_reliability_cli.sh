#!/usr/bin/env bash
# test_reliability_cli.sh — issue 6 through the `ddpm` binary:
#   1. exact resume: 2N steps in one go == N steps (--steps N), resume, N more; and == stopped by SIGINT, resumed
#      (checkpoint files compared byte for byte, metrics.jsonl record by record);
#   2. SIGKILL loop: 20 kills (10 at random moments, 10 the moment a checkpoint write is in progress); after every
#      kill all checkpoints load, the next start resumes from the last one, and the finished run is bit-identical
#      to an uninterrupted one;
#   3. signals: SIGINT and SIGTERM save at the end of the step and exit 130; a second SIGINT exits at once;
#   4. disk full (file-size limit, SIGXFSZ ignored): one-line error, non-zero exit, previous checkpoint intact;
#   5. non-finite guard: NaN injected into batches (DDPM_TEST_NAN_STEPS, a testing aid) is skipped and counted;
#      too many in a row stop the run with a message and the last good checkpoint.
# Usage: tests/test_reliability_cli.sh path/to/ddpm     (needs Fashion-MNIST from scripts/setup.sh)
set -u
DDPM=${1:?usage: test_reliability_cli.sh path/to/ddpm}
T=$(mktemp -d "${TMPDIR:-/tmp}/ddpm-rel.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
# metrics.jsonl without the timing fields, one canonical JSON per line
metrics_of() { /usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l); j.pop("images_per_sec"); j.pop("elapsed_s"); print(json.dumps(j, sort_keys=True))' "$1"; }

# A micro UNet on 64 random 8×8 images (fast steps, 10 MB checkpoints), 1 thread (bit-identity holds for a fixed
# thread count), dropout on (its draws must resume exactly too), tiny end-of-run grids.
mkdir -p "$T/data"
/usr/bin/python3 -c 'import random, struct, sys; random.seed(1)
open(sys.argv[1], "wb").write(struct.pack(">IIII", 0x803, 64, 8, 8) + bytes(random.randrange(256) for _ in range(64 * 64)))' \
  "$T/data/train-images-idx3-ubyte"
cat >"$T/micro.toml" <<'TOML'
preset = "tiny"
[model]
image_size = 8
ch = 32
ch_mult = [1, 2]
num_res_blocks = 1
attn_resolutions = []
dropout = 0.1
[train]
sample_steps = 2
sample_num = 1
sample_every = 0
log_every = 1
threads = 1
seed = 5
TOML
TR=(train --config "$T/micro.toml" --data "mnist:$T/data")
# check_dir DIR: every checkpoint*.safetensors in DIR is a complete, spec-conformant ddpm checkpoint (an
# independent stdlib reader: header, byte ranges tiling the data exactly, metadata); prints the step of
# checkpoint.safetensors (or -1 if there is none yet).
check_dir() { /usr/bin/python3 -c '
import glob, json, os, struct, sys
size = {"F32": 4, "F64": 8, "I64": 8}
step = -1
for f in sorted(glob.glob(os.path.join(sys.argv[1], "checkpoint*.safetensors"))):
    b = open(f, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    md = h.pop("__metadata__")
    assert md["format"] == "ddpm.cpp", f
    pos = 0
    for b0, b1, k in sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in h.items()):
        assert b0 == pos, (f, k)
        pos = b1
    assert pos == len(b) - 8 - n, (f, "size")
    if f.endswith("/checkpoint.safetensors"): step = int(md["step"])
print(step)' "$1"; }
# tensors_of FILE: the step, the Adam step count and a hash of every tensor (names and bytes), in file order
tensors_of() { /usr/bin/python3 -c '
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); md = h.pop("__metadata__")
print(md["step"], md["optim_step"])
for k, v in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"]):
    print(k, hashlib.sha256(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]).hexdigest())' "$1"; }

# --- 1. exact resume through the CLI -------------------------------------------------------------------------
"$DDPM" "${TR[@]}" --batch-size 4 --steps 8 --out "$T/run" 2>/dev/null && mv "$T/run" "$T/straight8"
"$DDPM" "${TR[@]}" --batch-size 4 --steps 4 --out "$T/run" 2>/dev/null
"$DDPM" "${TR[@]}" --batch-size 4 --steps 8 --out "$T/run" --resume 2>"$T/resume.log"
check "--steps 4, then --resume to 8: resumed at step 4" grep -q "resuming .* at step 4" "$T/resume.log"
check "  checkpoint is byte-identical to 8 steps in one go" cmp -s "$T/straight8/checkpoint.safetensors" "$T/run/checkpoint.safetensors"
checkx "  metrics.jsonl records are identical (timings aside)" 'diff <(metrics_of "$T/straight8/metrics.jsonl") <(metrics_of "$T/run/metrics.jsonl") >/dev/null'
check "  metrics.jsonl has one record per step" [ "$(wc -l <"$T/run/metrics.jsonl")" -eq 8 ]
rm -rf "$T/run"

# --- 3. signals (and exact resume after SIGINT) --------------------------------------------------------------
# wait_steps FILE N PID: until FILE has N lines (or PID died)
wait_steps() { while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && kill -0 "$3" 2>/dev/null; do sleep 0.05; done; }
"$DDPM" "${TR[@]}" --batch-size 4 --steps 60 --out "$T/run" 2>/dev/null && mv "$T/run" "$T/straight60"
"$DDPM" "${TR[@]}" --batch-size 4 --steps 60 --out "$T/run" 2>"$T/int.log" & pid=$!
wait_steps "$T/run/metrics.jsonl" 5 $pid; kill -INT $pid; wait $pid; rc=$?
check "SIGINT: exit 130" [ $rc -eq 130 ]
n=$(sed -nE 's/^interrupted at step ([0-9]+); saving checkpoint$/\1/p' "$T/int.log")
checkx "SIGINT: saved a checkpoint at the end of the step (step ${n:-?})" '[ -n "$n" ] && [ "$(step_of "$T/run/checkpoint.safetensors")" = "$n" ]'
"$DDPM" "${TR[@]}" --batch-size 4 --steps 60 --out "$T/run" --resume 2>/dev/null
check "SIGINT, resume: byte-identical to 60 steps in one go" cmp -s "$T/straight60/checkpoint.safetensors" "$T/run/checkpoint.safetensors"
checkx "  metrics.jsonl identical" 'diff <(metrics_of "$T/straight60/metrics.jsonl") <(metrics_of "$T/run/metrics.jsonl") >/dev/null'
rm -rf "$T/run"
"$DDPM" "${TR[@]}" --batch-size 4 --steps 1000 --out "$T/run" 2>"$T/term.log" & pid=$!
wait_steps "$T/run/metrics.jsonl" 1 $pid; kill -TERM $pid; wait $pid; rc=$?
n=$(sed -nE 's/^interrupted at step ([0-9]+); saving checkpoint$/\1/p' "$T/term.log")
checkx "SIGTERM: exit 130 with a checkpoint at step ${n:-?}" '[ $rc -eq 130 ] && [ -n "$n" ] && [ "$(step_of "$T/run/checkpoint.safetensors")" = "$n" ]'
# Second SIGINT: a step of batch 4096 takes seconds; the two signals 20 ms apart land in the same step.
rm -rf "$T/run"
"$DDPM" "${TR[@]}" --batch-size 4096 --steps 1 --out "$T/run" 2>/dev/null  # (a resume may not change the batch size)
cp "$T/run/checkpoint.safetensors" "$T/before.safetensors"
"$DDPM" "${TR[@]}" --batch-size 4096 --steps 1000 --out "$T/run" --resume 2>"$T/int2.log" & pid=$!
while ! grep -q "^training" "$T/int2.log" && kill -0 $pid 2>/dev/null; do sleep 0.05; done
sleep 0.5; kill -INT $pid; sleep 0.02; kill -INT $pid; wait $pid; rc=$?
checkx "second SIGINT: exit 130 at once, without finishing the step or saving" \
  '[ $rc -eq 130 ] && ! grep -q "saving checkpoint" "$T/int2.log"'
check "  previous checkpoint intact" cmp -s "$T/before.safetensors" "$T/run/checkpoint.safetensors"
rm -rf "$T/run"

# --- 4. disk full -----------------------------------------------------------------------------------------
"$DDPM" "${TR[@]}" --batch-size 2 --steps 2 --save-every 1 --out "$T/run" --keep-checkpoints 2 2>/dev/null
cp "$T/run/checkpoint.safetensors" "$T/before.safetensors"
# Files may grow to 2 MB (a tiny checkpoint is 11 MB): write() fails with EFBIG once the limit is reached.
( ulimit -f 2048; trap '' XFSZ; exec "$DDPM" "${TR[@]}" --batch-size 2 --steps 4 --save-every 1 --out "$T/run" --keep-checkpoints 2 --resume ) \
  >/dev/null 2>"$T/full.log"; rc=$?
check "disk full: non-zero exit" [ $rc -ne 0 ]
checkx "disk full: exactly one error line, naming the file and the cause" \
  '[ "$(grep -c "^ddpm: error:" "$T/full.log")" -eq 1 ] && grep -q "^ddpm: error: .*checkpoint-00000003.safetensors: write failed (File too large); the previous file is untouched$" "$T/full.log"'
check "disk full: previous checkpoint intact and loadable" cmp -s "$T/before.safetensors" "$T/run/checkpoint.safetensors"
check "disk full: no temporary file left" bash -c "! ls '$T/run' | grep -q '\.tmp\.'"
"$DDPM" "${TR[@]}" --batch-size 2 --steps 4 --save-every 1 --out "$T/run" --keep-checkpoints 2 --resume 2>/dev/null
check "disk full: with space again the run resumes and finishes" [ "$(step_of "$T/run/checkpoint.safetensors")" = 4 ]
check "--keep-checkpoints 2 kept checkpoint-00000003 and -04" \
  [ "$(cd "$T/run" && ls checkpoint-*.safetensors | tr '\n' ' ')" = "checkpoint-00000003.safetensors checkpoint-00000004.safetensors " ]
rm -rf "$T/run"

# --- 5. non-finite guard ------------------------------------------------------------------------------------
DDPM_TEST_NAN_STEPS=2 "$DDPM" "${TR[@]}" --batch-size 2 --steps 4 --out "$T/run" 2>"$T/nan.log"; rc=$?
checkx "one NaN batch: skipped, counted, the run finishes" \
  '[ $rc -eq 0 ] && grep -q "^step 3: non-finite loss (nan) .*update skipped (1 in a row, 1 in this run)" "$T/nan.log"'
check "  metrics.jsonl counts it (skipped 1, loss null)" \
  /usr/bin/python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert r[2]["skipped"]==1 and r[2]["loss"] is None and r[3]["skipped"]==0, r' "$T/run/metrics.jsonl"
check "  progress line shows the count" grep -q "^step 4/4 | .* | skipped 1$" "$T/nan.log"
rm -rf "$T/run"
DDPM_TEST_NAN_STEPS=2-1000 "$DDPM" "${TR[@]}" --batch-size 2 --steps 20 --save-every 1 --max-nonfinite 3 \
  --out "$T/run" 2>"$T/nan2.log"; rc=$?
checkx "NaN from step 2 on, --max-nonfinite 3: exit 1 with one error line" \
  '[ $rc -eq 1 ] && [ "$(grep -c "^ddpm: error:" "$T/nan2.log")" -eq 1 ] &&
  grep -q "^ddpm: error: training stopped at step 5 after 3 non-finite losses or gradients in a row (train.max_nonfinite); the last checkpoint (step 4) is .*; try a lower learning rate$" "$T/nan2.log"'
check "  the last good checkpoint is there (step 4, finite, loadable)" [ "$(step_of "$T/run/checkpoint.safetensors")" = 4 ]
rm -rf "$T/run"

# --- 2. SIGKILL loop --------------------------------------------------------------------------------------
# A checkpoint every step (10 MB written and fsynced each time, so that kills land inside writes), 3 numbered
# ones kept. Odd kills at a random moment of training, even kills the moment a checkpoint temporary file appears.
KS=(--batch-size 2 --save-every 1 --keep-checkpoints 3)
prev=-1; midwrite=0; kills=0; resumed_ok=0; intact=0
for i in $(seq 1 20); do
  : >"$T/kill.log"  # emptied here, not by the background job's redirection (which may come late)
  "$DDPM" "${TR[@]}" "${KS[@]}" --steps 100000 --out "$T/run" --resume 2>>"$T/kill.log" & pid=$!
  while ! grep -q "^training" "$T/kill.log" 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.01; done
  if [ $((i % 2)) -eq 1 ]; then
    sleep "$(/usr/bin/python3 -c 'import random; print(round(random.uniform(0.05, 1.0), 3))')"
  else
    sleep "$(/usr/bin/python3 -c 'import random; print(round(random.uniform(0.0, 0.3), 3))')"
    while ! ls "$T/run" | grep -q '^checkpoint.*\.tmp\.' && kill -0 $pid 2>/dev/null; do sleep 0.002; done
  fi
  if ! kill -9 $pid 2>/dev/null; then wait $pid; echo "# run $i ended before the kill: $(tail -1 "$T/kill.log")"; break; fi
  wait $pid 2>/dev/null; kills=$((kills + 1))
  ls "$T/run" | grep -q '\.tmp\.' && midwrite=$((midwrite + 1))
  # this start resumed from the checkpoint the previous kill left (or started fresh if there was none)
  if { [ "$prev" = -1 ] && grep -q "starting a new run" "$T/kill.log"; } || grep -q "resuming .* at step $prev$" "$T/kill.log"; then
    resumed_ok=$((resumed_ok + 1))
  else echo "# kill $i: expected a resume at step $prev: $(grep -m1 -E 'resuming|error' "$T/kill.log")"; fi
  if step=$(check_dir "$T/run" 2>"$T/check.err"); then intact=$((intact + 1)); prev=$step
  else echo "# kill $i: corrupt checkpoint: $(tail -1 "$T/check.err")"; fi
done
echo "# $kills SIGKILLs, $midwrite of them during a checkpoint write (temporary file left behind); checkpoint at step $prev"
checkx "20 SIGKILLs; after each, every checkpoint intact and the next start resumed from the last one" \
  '[ $kills -eq 20 ] && [ $intact -eq 20 ] && [ $resumed_ok -eq 20 ]'
check "at least 5 kills landed during a checkpoint write" [ $midwrite -ge 5 ]
for f in "$T/run"/checkpoint*.safetensors; do
  checkx "  ddpm info reads $(basename "$f")" '"$DDPM" info --checkpoint "$f" >/dev/null 2>&1'
done
# Finish the run 3 steps further, and train the same number of steps without interruption.
final=$((prev + 3))
"$DDPM" "${TR[@]}" "${KS[@]}" --steps $final --out "$T/run" --resume 2>"$T/final.log"
check "the last resume continues from step $prev and finishes at step $final" grep -q "^done: $final steps" "$T/final.log"
"$DDPM" "${TR[@]}" --batch-size 2 --steps $final --out "$T/ref" 2>/dev/null
checkx "killed 20 times, the final weights, EMA and Adam state are bit-identical to an uninterrupted run" \
  'diff <(tensors_of "$T/ref/checkpoint.safetensors") <(tensors_of "$T/run/checkpoint.safetensors")'
checkx "  and so are the metrics.jsonl records (no step missing or repeated)" \
  'diff <(metrics_of "$T/ref/metrics.jsonl") <(metrics_of "$T/run/metrics.jsonl") >/dev/null'
checkx "  no temporary files are left" '! ls "$T/run" "$T/run/samples" | grep -q "\.tmp\."'
check "  3 numbered checkpoints kept" [ "$(ls "$T/run"/checkpoint-*.safetensors | wc -l)" -eq 3 ]

echo "reliability_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
