#!/usr/bin/env bash
# Installs, builds and trains: the seed recipe (configs/seed_cnn.yaml) unless a --config is given.
# Extra arguments go to `ddptrain train`, e.g.  bash scripts/train.sh --set data.root=/data/cifar
# It resumes (resume=auto) unless a resume= is given: run again, it continues the run in the
# config's checkpoint.dir, or finds it complete, instead of being refused for overwriting it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# scripts/build.sh built into ${BUILD_DIR:-build}: launch/local.sh runs the ddptrain there.
if [ -n "${BUILD_DIR:-}" ] && [ -z "${DDPTRAIN_BIN:-}" ]; then
  DDPTRAIN_BIN="$(realpath -m "$BUILD_DIR")/ddptrain"
  export DDPTRAIN_BIN
fi
args=("$@")
case " $* " in *" --config "*|*" --config="*|*" -c "*) ;; *) args=(--config configs/seed_cnn.yaml "${args[@]}") ;; esac
case " $* " in *"resume="*) ;; *) args+=(--set resume=auto) ;; esac
exec bash launch/local.sh train "${args[@]}"
