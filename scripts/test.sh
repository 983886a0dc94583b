#!/usr/bin/env bash
# Installs, builds (warnings are errors, as in CI) and runs every test (unit, distributed under
# mpirun, end to end) with ctest. Extra arguments go to ctest, e.g.  bash scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
DDPTRAIN_WITH_SLURM=1 bash scripts/build.sh -DDDPTRAIN_WERROR=ON  # + slurm-wlm, munge for the slurm test
source scripts/env.sh
BUILD_DIR="${BUILD_DIR:-build}"
export DDPTRAIN_PYTHON="$DDPTRAIN_VENV/bin/python"
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
