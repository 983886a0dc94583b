#!/usr/bin/env bash
# Installs the dependencies (scripts/install.sh) and builds ddptrain into ${BUILD_DIR:-build}.
# Extra arguments go to CMake's configure step (e.g. -DCMAKE_PREFIX_PATH=/opt/libtorch).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/env.sh
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DDDPTRAIN_PYTHON="$DDPTRAIN_VENV/bin/python" "$@" >/dev/null
# Each LibTorch translation unit takes ~1.2 GB of RAM to compile: one job per core is safe here.
cmake --build "$BUILD_DIR" -j "$(nproc)"
