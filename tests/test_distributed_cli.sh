#!/usr/bin/env bash
# test_distributed_cli.sh — issue 8 through the `ddpm` binary (CPU, Gloo, loopback):
#   1. `train --nproc 2` end to end: one run directory written by rank 0, identical replicas, comm time logged;
#   2. torchrun-style: two processes started by hand with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, and PyTorch's
#      torchrun itself (when python3-torch is installed), give the same tensors as --nproc 2 (bit for bit), and
#      the same weights as one process up to float rounding;
#   3. resume in distributed mode, and resume with another world size (1 and back to 2);
#   4. SIGINT to the launcher: forwarded once, every rank stops after the same step, checkpoint saved, exit 130;
#   5. SIGKILL of one worker: the run ends with an error within the timeout, the checkpoint stays valid and
#      resumable;
#   6. bad input: one error line (batch not divisible, --nproc 0, a malformed RANK, no peers within the timeout).
# Usage: tests/test_distributed_cli.sh path/to/ddpm     (needs Gloo: exits 77 = skipped if built without it)
set -u
DDPM=${1:?usage: test_distributed_cli.sh path/to/ddpm}
T=$(mktemp -d "${TMPDIR:-/tmp}/ddpm-dist.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# max |a - b| over the model. tensors of two checkpoints (an independent stdlib safetensors reader).
max_diff() { /usr/bin/python3 -c '
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4), d[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__" and k.startswith("model.") and v["dtype"] == "F32"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys()
print(max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a))' "$1" "$2"; }

# same_tensors A B: every tensor of A equals B's byte for byte (the metadata differ: the config names --out).
same_tensors() { /usr/bin/python3 -c '
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: (v["dtype"], v["shape"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if a == b and len(a) > 0 else 1)' "$1" "$2"; }

"$DDPM" train --help | grep -q -- "--nproc" || { echo "no --nproc in this build"; exit 1; }

# A micro UNet on 64 random 8×8 images with labels, 1 thread per worker, no dropout (its masks are per rank).
mkdir -p "$T/data"
/usr/bin/python3 -c 'import random, struct, sys; random.seed(1)
open(sys.argv[1], "wb").write(struct.pack(">IIII", 0x803, 64, 8, 8) + bytes(random.randrange(256) for _ in range(64 * 64)))
open(sys.argv[2], "wb").write(struct.pack(">II", 0x801, 64) + bytes(i % 3 for i in range(64)))' \
  "$T/data/train-images-idx3-ubyte" "$T/data/train-labels-idx1-ubyte"
cat >"$T/micro.toml" <<'TOML'
preset = "tiny"
[model]
image_size = 8
ch = 32
ch_mult = [1, 2]
num_res_blocks = 1
attn_resolutions = []
dropout = 0.0
[train]
batch_size = 8
sample_steps = 2
sample_num = 1
sample_every = 0
log_every = 1
threads = 1
seed = 5
flip = true
TOML
TR=(train --config "$T/micro.toml" --data "mnist:$T/data")

# Without Gloo there is nothing to test here.
if ! "$DDPM" "${TR[@]}" --out "$T/probe" --steps 1 --nproc 2 >/dev/null 2>"$T/probe.err"; then
  if grep -q "no c10d backend\|has no Gloo" "$T/probe.err"; then echo "built without Gloo: skipped"; exit 77; fi
fi

# --- 1. --nproc 2 end to end ----------------------------------------------------------------------------------
"$DDPM" "${TR[@]}" --out "$T/np2" --steps 6 --save-every 3 --nproc 2 --dist-timeout 30 2>"$T/np2.log"
checkx "--nproc 2 exits 0" "[ $? -eq 0 ]"
checkx "rank 0 logs world size 2 on gloo, 4 images per rank" "grep -q 'world size 2 (gloo, 4 per rank)' '$T/np2.log'"
checkx "all ranks end with identical weights (checksum)" "grep -q 'all 2 ranks hold identical weights' '$T/np2.log'"
checkx "log lines show the communication share" "grep -q '^step 6/6 | loss .* | comm [0-9]*%' '$T/np2.log'"
checkx "only rank 0 logs (one 'step 6/6' line)" "[ \$(grep -c '^step 6/6' '$T/np2.log') -eq 1 ]"
checkx "checkpoint at step 6" "[ \"\$(step_of '$T/np2/checkpoint.safetensors')\" = 6 ]"
checkx "metrics.jsonl: 6 records with world_size, per-rank images/s and comm_s" \
  "[ \$(wc -l <'$T/np2/metrics.jsonl') -eq 6 ] && grep -q '\"world_size\":2' '$T/np2/metrics.jsonl' && grep -q '\"images_per_sec_per_rank\"' '$T/np2/metrics.jsonl' && grep -q '\"comm_s\"' '$T/np2/metrics.jsonl'"

# --- 2. by hand, the torchrun way; and one process with the same global batch ----------------------------------
P=$(free_port)
for r in 0 1; do
  RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P \
    "$DDPM" "${TR[@]}" --out "$T/env2" --steps 6 --save-every 3 2>"$T/env2.$r.log" &
done
wait %1; rc0=$?; wait %2; rc1=$?
checkx "RANK/WORLD_SIZE/MASTER_* launch: both ranks exit 0" "[ $rc0 -eq 0 ] && [ $rc1 -eq 0 ]"
checkx "... the same weights, EMA and Adam state as --nproc 2, bit for bit" "same_tensors '$T/np2/checkpoint.safetensors' '$T/env2/checkpoint.safetensors'"
checkx "... and rank 1 wrote nothing but logged nothing either" "[ ! -s '$T/env2.1.log' ]"
# PyTorch's own torchrun (Debian's python3-torch; its Python 3.11 needs explicit --redirects/--tee values).
if /usr/bin/python3 -c 'import torch.distributed.run' 2>/dev/null; then
  /usr/bin/python3 -m torch.distributed.run --no_python --standalone --nproc_per_node 2 --redirects 2 --tee 2 \
    --log_dir "$T/torchrun-logs" "$DDPM" "${TR[@]}" --out "$T/trun" --steps 6 --save-every 3 >"$T/trun.log" 2>&1
  checkx "torchrun --no_python --nproc_per_node 2: exit 0" "[ $? -eq 0 ]"
  checkx "... the same weights, EMA and Adam state as --nproc 2, bit for bit" "same_tensors '$T/np2/checkpoint.safetensors' '$T/trun/checkpoint.safetensors'"
else
  echo "# torchrun not installed (python3-torch): skipped the torchrun launch"
fi
"$DDPM" "${TR[@]}" --out "$T/one" --steps 6 --save-every 3 2>/dev/null
d=$(max_diff "$T/np2/checkpoint.safetensors" "$T/one/checkpoint.safetensors")
echo "# max |w(2 processes) - w(1 process)| after 6 steps of global batch 8: $d"
checkx "2 processes == 1 process with the same global batch, to 1e-4 ($d)" \
  "/usr/bin/python3 -c 'import sys; sys.exit(0 if $d < 1e-4 else 1)'"

# --- 3. resume: same world size, then 1 process, then 2 again --------------------------------------------------
"$DDPM" "${TR[@]}" --out "$T/np2" --steps 9 --save-every 3 --nproc 2 --resume 2>"$T/res.log"
checkx "--nproc 2 --resume continues from step 6 to 9" \
  "grep -q 'resuming .* at step 6' '$T/res.log' && [ \"\$(step_of '$T/np2/checkpoint.safetensors')\" = 9 ]"
checkx "... metrics.jsonl has 9 records" "[ \$(wc -l <'$T/np2/metrics.jsonl') -eq 9 ]"
"$DDPM" "${TR[@]}" --out "$T/np2" --steps 11 --resume 2>"$T/res1.log"
checkx "the same run resumes in 1 process (11)" "[ \"\$(step_of '$T/np2/checkpoint.safetensors')\" = 11 ]"
"$DDPM" "${TR[@]}" --out "$T/np2" --steps 13 --nproc 2 --resume 2>"$T/res2.log"
checkx "... and again in 2 (13)" "[ \"\$(step_of '$T/np2/checkpoint.safetensors')\" = 13 ]"

# --- 4. SIGINT to the launcher ------------------------------------------------------------------------------
"$DDPM" "${TR[@]}" --out "$T/int" --steps 100000 --save-every 0 --log-every 1 --nproc 2 2>"$T/int.log" &
L=$!
for _ in $(seq 1 300); do grep -q '^step 3/' "$T/int.log" && break; sleep 0.1; done
kill -INT $L
wait $L; rc=$?
checkx "SIGINT: the launcher exits 130" "[ $rc -eq 130 ]"
s=$(step_of "$T/int/checkpoint.safetensors")
checkx "... every rank stopped after the same step and rank 0 saved it (step $s)" \
  "grep -q 'interrupted at step $s (all 2 ranks); saving checkpoint' '$T/int.log'"
checkx "... no worker reported an error" "! grep -q 'ddpm: error' '$T/int.log'"

# --- 5. SIGKILL of one worker -------------------------------------------------------------------------------
"$DDPM" "${TR[@]}" --out "$T/kill" --steps 100000 --save-every 5 --nproc 2 --dist-timeout 20 2>"$T/kill.log" &
L=$!
for _ in $(seq 1 300); do [ -s "$T/kill/checkpoint.safetensors" ] && break; sleep 0.1; done
sleep 0.5
W1=""
for p in $(pgrep -P $L); do tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qx 'RANK=1' && W1=$p; done
[ -n "$W1" ] || { bad "found no worker with RANK=1 under the launcher (pid $L)"; kill -9 $L; }
t0=$(date +%s.%N)
kill -9 "$W1"
wait $L; rc=$?
secs=$(/usr/bin/python3 -c "print(round($(date +%s.%N) - $t0, 2))")
echo "# after SIGKILL of rank 1 (pid $W1) the run ended in $secs s (timeout 20 s)"
checkx "killed worker: the launcher exits non-zero" "[ $rc -ne 0 ] && [ $rc -ne 130 ]"
checkx "... within the 20 s timeout ($secs s)" "/usr/bin/python3 -c 'import sys; sys.exit(0 if $secs < 20 else 1)'"
checkx "... rank 0 says a peer died" "grep -q 'ddpm: error: rank 0/2: .* failed — another process died' '$T/kill.log'"
checkx "... the launcher names the killed worker" "grep -q 'ddpm: error: worker rank 1 was killed by signal 9' '$T/kill.log'"
s=$(step_of "$T/kill/checkpoint.safetensors")
checkx "... the checkpoint is valid (step $s, a multiple of 5)" "[ -n '$s' ] && [ \$(( $s % 5 )) -eq 0 ] && [ $s -gt 0 ]"
"$DDPM" "${TR[@]}" --out "$T/kill" --steps $((s + 2)) --nproc 2 --resume 2>"$T/kill2.log"
checkx "... and resumable (to step $((s + 2)))" "[ \"\$(step_of '$T/kill/checkpoint.safetensors')\" = $((s + 2)) ]"
checkx "... no temporary file left behind" "[ -z \"\$(ls '$T/kill' | grep -v -e '^checkpoint.safetensors$' -e '^config.toml$' -e '^metrics.jsonl$' -e '^samples$' -e '^tensorboard$')\" ]"

# --- 6. bad input ---------------------------------------------------------------------------------------------
expect_error "--nproc 3 with a global batch of 8" "not divisible by the 3 processes" \
  "$DDPM" "${TR[@]}" --out "$T/bad1" --steps 2 --nproc 3
checkx "... wrote no run directory" "[ ! -e '$T/bad1' ]"
"$DDPM" "${TR[@]}" --out "$T/bad2" --steps 2 --nproc 0 >/dev/null 2>&1
checkx "--nproc 0 is a usage error (exit 2)" "[ $? -eq 2 ]"
expect_error "a malformed RANK" "environment variable RANK='one' is not an integer" \
  env WORLD_SIZE=2 RANK=one "$DDPM" "${TR[@]}" --out "$T/bad3" --steps 2
expect_error "a rank whose peers never come: rendezvous error within --dist-timeout" "rendezvous at 127.0.0.1:" \
  env WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT="$(free_port)" "$DDPM" "${TR[@]}" --out "$T/bad4" --steps 2 --dist-timeout 3

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
