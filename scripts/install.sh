#!/usr/bin/env bash
# Installs everything ddptrain needs on Debian 12 (or a Debian-based image):
#   - build tools and libraries from Debian's archive (Open MPI, spdlog, GTest, yaml-cpp, ...)
#   - the pinned PyTorch wheel (its LibTorch is what we link) into a virtual environment
#     at $DDPTRAIN_VENV, reused when it already holds the pinned version.
# Prints nothing but progress; safe to run again.
set -euo pipefail

source "$(dirname "$0")/env.sh"
VENV="$DDPTRAIN_VENV"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

debs=(build-essential cmake ninja-build pkg-config git ca-certificates
      python3 python3-venv python3-pip
      libopenmpi-dev openmpi-bin libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
      libyaml-cpp-dev libcurl4-openssl-dev libarchive-dev libssl-dev zlib1g-dev procps
      dataset-fashion-mnist clang-format)
# DDPTRAIN_WITH_SLURM=1 (scripts/test.sh sets it): Slurm and munge for tests/slurm, which starts
# its own daemons (none starts by itself: no systemd in containers and CI).
if [ "${DDPTRAIN_WITH_SLURM:-0}" = 1 ]; then debs+=(slurm-wlm munge); fi
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python: prefer Debian's interpreter so the venv matches what python3-venv provides; any
# python3 >= 3.10 with the venv module works.
PY="${DDPTRAIN_BASE_PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ] || \
   ! "$VENV/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "install: torch $TORCH_VERSION into $VENV (the wheel and its CUDA libraries are large; done once)"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" numpy tensorboard matplotlib
fi
# Added after the first venvs were made: install into an existing venv too.
if ! "$VENV/bin/python" -c "import tensorboard, matplotlib, numpy" 2>/dev/null; then
  echo "install: numpy, tensorboard and matplotlib into $VENV"
  "$VENV/bin/python" -m pip install -q numpy tensorboard matplotlib
fi
echo "install: ok (venv $VENV, torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
