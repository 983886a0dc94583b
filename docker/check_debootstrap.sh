#!/usr/bin/env bash
# Checks docker/Dockerfile's recipe without a Docker engine: makes a fresh Debian 12 (bookworm)
# root with debootstrap, and inside it runs the Dockerfile's steps (scripts/install.sh, then
# scripts/build.sh), then trains configs/smoke.yaml with launch/local.sh on 2 ranks and with
# launch/single.sh. Needs root and the network (Debian archive, PyPI: the torch wheel and its
# CUDA libraries are ~5 GB; the pip cache is kept on the host in DDPTRAIN_PIP_CACHE, default
# /var/cache/ddptrain-pip, so a second run downloads nothing). Heavy (~30 min on 2 cores):
# run by hand, not in CI.
#   sudo bash docker/check_debootstrap.sh
#   DDPTRAIN_BOOKWORM_ROOT=/var/tmp/r DDPTRAIN_BOOKWORM_KEEP=1 bash docker/check_debootstrap.sh
# The root is deleted afterwards unless DDPTRAIN_BOOKWORM_KEEP=1. Exit status 0: it all worked.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${DDPTRAIN_BOOKWORM_ROOT:-/var/tmp/ddptrain-bookworm}"
MIRROR="${DDPTRAIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PIP_CACHE="${DDPTRAIN_PIP_CACHE:-/var/cache/ddptrain-pip}"
[ "$(id -u)" = 0 ] || { echo "check_debootstrap: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null

source "$here/scripts/chroot_lib.sh"
delete=1; [ "${DDPTRAIN_BOOKWORM_KEEP:-0}" = 1 ] && delete=0
chroot_init check_debootstrap "$ROOT" "$delete"
chroot_prepare bookworm "$MIRROR"
mkdir -p "$PIP_CACHE" "$ROOT/root/.cache/pip"
mnt --bind "$PIP_CACHE" "$ROOT/root/.cache/pip"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Site setup, not part of the recipe: a network that reaches PyPI through a TLS-inspecting proxy
# needs the host's CA bundle (DDPTRAIN_CA_BUNDLE, default the host's system bundle) for pip.
CA_BUNDLE="${DDPTRAIN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
pip_cert=()
if [ -f "$CA_BUNDLE" ]; then
  cp "$CA_BUNDLE" "$ROOT/etc/ddptrain-host-ca.crt"
  pip_cert=(PIP_CERT=/etc/ddptrain-host-ca.crt)
fi

# What the Dockerfile's ENV lines set.
in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root DEBIAN_FRONTEND=noninteractive DDPTRAIN_VENV=/opt/ddptrain-venv \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "${pip_cert[@]}" \
    bash -c "cd /opt/ddptrain && $1"
}
# COPY scripts/install.sh scripts/env.sh scripts/  +  RUN bash scripts/install.sh
rm -rf "$ROOT/opt/ddptrain" && mkdir -p "$ROOT/opt/ddptrain/scripts"
cp "$here/scripts/install.sh" "$here/scripts/env.sh" "$ROOT/opt/ddptrain/scripts/"
stamp "scripts/install.sh"
in_root 'bash scripts/install.sh'
# COPY . .  (the working tree, as the Docker build context with .dockerignore)
stamp "copy the working tree"
(cd "$here" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
  tar -xf - -C "$ROOT/opt/ddptrain"
# RUN BUILD_DIR=build bash scripts/build.sh -DDDPTRAIN_BUILD_TESTS=OFF
stamp "scripts/build.sh"
in_root 'BUILD_DIR=build bash scripts/build.sh -DDDPTRAIN_BUILD_TESTS=OFF 2>&1 | tail -5; test -x build/ddptrain'
stamp "smoke: launch/local.sh with 2 ranks"
in_root 'DDPTRAIN_NP=2 bash launch/local.sh train --config configs/smoke.yaml 2>&1 | tee /tmp/np2.log | grep -E "LibTorch|world size|eval|saved|wall"'
in_root 'grep -q "epoch 2 eval" /tmp/np2.log'
stamp "smoke: launch/single.sh"
in_root 'bash launch/single.sh train --config configs/smoke.yaml --set train.epochs=1 --set log.dir=runs/single --set checkpoint.dir=runs/single/ckpt 2>&1 | tee /tmp/single.log | grep -E "world size|eval"'
in_root 'grep -q "epoch 1 eval" /tmp/single.log'
stamp "ok: Debian 12 recipe installs, builds and trains"
