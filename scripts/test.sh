#!/usr/bin/env bash
# test.sh — the test suite: installs dependencies, builds, runs every test with ctest (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 "$@"
