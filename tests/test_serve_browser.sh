#!/usr/bin/env bash
# test_serve_browser.sh DDPM_BINARY — the browser test of the `ddpm serve` web page.
# Starts `DDPM serve` on a free port with the shipped fmnist-small model and --data fashion-mnist@test, waits for its
# "listening on http://HOST:PORT" line (60 s at most), runs tests/browser/serve_page.mjs (playwright-core driving
# Debian's chromium) against it, and always stops the server. Exit status: non-zero on any failure.
#   tests/test_serve_browser.sh build/ddpm
#   tests/test_serve_browser.sh --mock       the same test against tests/browser/mock_server.mjs (page development)
# Env: OUT_DIR (screenshots generate.png, restore.png; default /tmp/ddpm-browser), CHROMIUM (default /usr/bin/chromium),
#      PAGE_FROM_SOURCE=1: test src/ddpm/serve/web/index.html as it is now (not the copy built into DDPM), served by
#      mock_server.mjs --proxy in front of the real server.
# Needs: node, tests/browser/node_modules (npm ci --prefix tests/browser), chromium (apt-get install chromium).
set -u
here=$(cd "$(dirname "$0")" && pwd)
DDPM=${1:-}
[ -n "$DDPM" ] || { echo "usage: $0 DDPM_BINARY | --mock" >&2; exit 2; }
models=$(cd "$here/.." && pwd)/models
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export OUT_DIR=${OUT_DIR:-/tmp/ddpm-browser} CHROMIUM
command -v node >/dev/null 2>&1 || { echo "test_serve_browser: node is not installed (apt-get install nodejs npm)"; exit 1; }
[ -d "$here/browser/node_modules/playwright-core" ] || { echo "test_serve_browser: $here/browser/node_modules/playwright-core is missing (run: npm ci --prefix tests/browser)"; exit 1; }
[ -x "$CHROMIUM" ] || { echo "test_serve_browser: $CHROMIUM is missing (apt-get install chromium)"; exit 1; }
if [ "$DDPM" != --mock ]; then
  [ -x "$DDPM" ] || { echo "test_serve_browser: $DDPM is not an executable"; exit 1; }
  [ -f "$models/fmnist-small.safetensors" ] || { echo "test_serve_browser: $models/fmnist-small.safetensors is missing"; exit 1; }
fi

T=$(mktemp -d)
: >"$T/err"; : >"$T/proxy"
pid= proxy_pid=
stop() {  # stop PID: TERM, up to 5 s, then KILL
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
stop_server() { stop "$proxy_pid"; proxy_pid=; stop "$pid"; pid=; }
trap 'stop_server; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

if [ "$DDPM" = --mock ]; then
  node "$here/browser/mock_server.mjs" --port 0 >"$T/out" 2>"$T/err" &
else
  "$DDPM" serve --checkpoint "$models/fmnist-small.safetensors" --port 0 --data fashion-mnist@test >"$T/out" 2>"$T/err" &
fi
pid=$!

# wait_url PID FILE: the URL of the "listening on http://HOST:PORT" line PID writes to FILE (60 s at most)
wait_url() {
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if [[ $(<"$2") =~ listening\ on\ (http://[^[:space:]]+:[0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; return 0; fi
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
url=$(wait_url "$pid" "$T/err")
if [ -z "$url" ]; then
  echo "FAIL - the server printed no 'listening on http://HOST:PORT' line within 60 s (or exited); its stderr:"
  tail -n 20 "$T/err"
  exit 1
fi
echo "# server at $url"
if [ "${PAGE_FROM_SOURCE:-0}" = 1 ] && [ "$DDPM" != --mock ]; then
  node "$here/browser/mock_server.mjs" --proxy "$url" --port 0 >/dev/null 2>"$T/proxy" &
  proxy_pid=$!
  url=$(wait_url "$proxy_pid" "$T/proxy") || { echo "FAIL - the page proxy did not start: $(head -c 300 "$T/proxy")"; exit 1; }
  echo "# the page from src/ddpm/serve/web/index.html through $url"
fi

timeout 200 node "$here/browser/serve_page.mjs" "$url"
rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "FAIL - the browser test ran past 200 s"
  echo "# server stderr (last 20 lines):"; tail -n 20 "$T/err"
fi
stop_server
exit "$rc"
