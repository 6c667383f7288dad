#!/usr/bin/env bash
# setup.sh — installs every dependency from Debian 12's archive (idempotent: skips apt when all are present).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config python3
      libtorch-dev libopenblas0-pthread        # LibTorch 1.13 (CPU); OpenBLAS instead of the reference BLAS (~35x)
      libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libstb-dev zlib1g-dev libgtest-dev
      libdnnl-dev                               # oneDNN 2.6 headers: the Winograd convolutions of fp32 training
      libgloo-dev                               # Gloo's headers: LibTorch's c10d Gloo backend (multi-process training)
      libcpp-httplib-dev                        # HTTP for ddpm serve
      iproute2                                  # tests only: ss shows the server's listen backlog
      chromium                                  # tests only: the browser test of the ddpm serve page
      python3-torch                             # tests and bench only: PyTorch's torchrun, the PyTorch reference
      python3-protobuf python3-crcmod           # tests only: an independent TensorBoard event-file reader
      dataset-fashion-mnist                     # the real Fashion-MNIST in /usr/share/datasets/fashion-mnist
      clang libclang-rt-14-dev)                 # libFuzzer + ASan/UBSan runtimes for scripts/fuzz.sh (ctest fuzz_smoke)
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)   # the machine's Node.js when it has one
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# tests only: playwright-core (npm registry, pinned in tests/browser/package-lock.json) drives Debian's chromium
browser_modules() {
  local here; here=$(cd "$(dirname "$0")/.." && pwd)
  [ -d "$here/tests/browser/node_modules/playwright-core" ] ||
    npm ci --prefix "$here/tests/browser" --no-audit --no-fund --loglevel=error >/dev/null
}
if [ ${#missing[@]} -eq 0 ]; then
  browser_modules
  echo "setup: all dependencies present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
browser_modules
echo "setup: done"
