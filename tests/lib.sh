# lib.sh — helpers shared by the CLI test scripts (sourced after DDPM and T are set).
#   ok/bad NAME               count and print one result line
#   check NAME CMD...         ok if CMD succeeds
#   checkx NAME CONDITION     ok if the shell expression CONDITION holds
#   expect_error NAME PATTERN CMD...   non-zero exit and exactly one stderr line "ddpm: error: ...PATTERN..."
#   expect_error_after_progress NAME PATTERN CMD...   the same, but progress lines may come before the error line,
#                                                      which must be the last line and the only error
#   step_of CHECKPOINT        the step stored in a checkpoint (through `ddpm info`)
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   - $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
checkx() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
expect_error() {
  local name=$1 pattern=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && grep -q "^ddpm: error: .*$pattern" "$T/err"; then ok "$name"
  else bad "$name (rc=$rc, $lines stderr lines): $(head -c 400 "$T/err")"; fi
}
expect_error_after_progress() {
  local name=$1 pattern=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne 0 ] && [ "$(grep -c '^ddpm: error: ' "$T/err")" -eq 1 ] && tail -n 1 "$T/err" | grep -q "^ddpm: error: .*$pattern"; then ok "$name"
  else bad "$name (rc=$rc): $(tail -c 400 "$T/err")"; fi
}
step_of() { "$DDPM" info --checkpoint "$1" 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])'; }
