#!/usr/bin/env bash
# Builds ddptrain and runs its whole ctest suite against another LibTorch: the CPU-only
# `libtorch-dev` 2.6 of Debian trixie (with trixie's g++ 14, CMake 3.31, Open MPI 5, spdlog 1.15,
# yaml-cpp 0.8, GoogleTest 1.15), inside a trixie root made with debootstrap. Needs root and the
# Debian archive; not part of CI (~2 GB root, ~5-15 minutes on 2 cores). e2e_observe is left out:
# it needs Python torch and tensorboard, which the trixie root does not have.
#
#   sudo bash scripts/check_trixie_libtorch.sh            # keeps the root for the next run
#   DDPTRAIN_TRIXIE_ROOT=/var/tmp/x DDPTRAIN_TRIXIE_CLEAN=1 bash scripts/check_trixie_libtorch.sh
#   DDPTRAIN_CTEST_ARGS="-L unit" bash scripts/check_trixie_libtorch.sh   # ctest arguments
#
# The working tree (tracked and untracked files, not build folders) is copied into the root, so
# what is checked is what you have, committed or not. Exit status: 0 when every test passed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${DDPTRAIN_TRIXIE_ROOT:-/var/tmp/ddptrain-trixie}"
MIRROR="${DDPTRAIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" = 0 ] || { echo "check_trixie_libtorch: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null

source "$here/scripts/chroot_lib.sh"
chroot_init check_trixie_libtorch "$ROOT" "${DDPTRAIN_TRIXIE_CLEAN:-0}"
chroot_prepare trixie "$MIRROR"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

stamp "apt: libtorch-dev and the build dependencies"
chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c '
  apt-get update -qq &&
  apt-get install -y -qq --no-install-recommends libtorch-dev g++ cmake ninja-build pkg-config \
    libopenmpi-dev openmpi-bin libspdlog-dev libfmt-dev libgtest-dev libgmock-dev \
    libyaml-cpp-dev ca-certificates libcurl4-openssl-dev libarchive-dev libssl-dev zlib1g-dev \
    procps python3 dataset-fashion-mnist >/dev/null'
chroot "$ROOT" dpkg-query -W -f='  ${Package} ${Version}\n' libtorch-dev g++ cmake libopenmpi-dev libspdlog-dev libyaml-cpp-dev libgtest-dev

stamp "copy the working tree"
rm -rf "$ROOT/src/ddptrain" && mkdir -p "$ROOT/src/ddptrain"
(cd "$here" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
  tar -xf - -C "$ROOT/src/ddptrain"

stamp "configure + build (system LibTorch, found by find_package(Torch) on the default path)"
# Open MPI 5 in a chroot: only the self and shared-memory transports (silences btl/tcp noise).
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  OMPI_MCA_btl=self,sm OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe \
  bash -c 'cd /src/ddptrain &&
    set -o pipefail
    cmake -S . -B build-trixie -G Ninja > build-trixie.configure.log 2>&1 ||
      { cat build-trixie.configure.log; exit 1; }
    grep -E "^-- LibTorch" build-trixie.configure.log
    cmake --build build-trixie -j "$(nproc)" 2>&1 | tail -30'
stamp "ctest"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  OMPI_MCA_btl=self,sm OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe \
  DDPTRAIN_CTEST_ARGS="${DDPTRAIN_CTEST_ARGS:--LE slurm|install -E e2e_observe}" \
  bash -c 'cd /src/ddptrain && ctest --test-dir build-trixie --output-on-failure $DDPTRAIN_CTEST_ARGS'
stamp "ok: built and tested against Debian trixie libtorch-dev"
