# Shared by docker/check_debootstrap.sh and scripts/check_trixie_libtorch.sh: a Debian root made
# with debootstrap, with proc, sys, dev and dev/pts mounted; on exit everything mounted with `mnt`
# is unmounted in reverse order and, when asked, the root is deleted (never while still mounted).
#   source scripts/chroot_lib.sh
#   chroot_init NAME ROOT DELETE_ON_EXIT(0|1)    # log prefix, root folder; sets the EXIT trap
#   chroot_prepare SUITE MIRROR                  # debootstrap unless done before, then mount
#   mnt [mount args...] TARGET                   # a further mount, undone on exit
#   stamp "message"                              # "NAME: [seconds] message"
chroot_init() {
  CHROOT_NAME=$1 ROOT=$2 CHROOT_DELETE=$3
  mounted=()
  t0=$(date +%s)
  trap chroot_cleanup EXIT
}
chroot_cleanup() {
  local rc=$?
  # Unmount in reverse order of mounting, before the root may be deleted.
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  if [ "$CHROOT_DELETE" = 1 ] && [ -d "$ROOT" ]; then
    if grep -q " $ROOT/" /proc/mounts; then echo "$CHROOT_NAME: $ROOT still has mounts; not deleting" >&2
    else rm -rf --one-file-system "$ROOT"; fi
  fi
  exit "$rc"
}
mnt() { mount "$@"; mounted+=("${@: -1}"); }
stamp() { echo "$CHROOT_NAME: [$(( $(date +%s) - t0 )) s] $*"; }
chroot_prepare() {
  local suite=$1 mirror=$2
  if [ ! -f "$ROOT/.debootstrap-done" ]; then
    stamp "debootstrap $suite into $ROOT"
    rm -rf --one-file-system "$ROOT"
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase "$suite" "$ROOT" "$mirror" >"${ROOT%/}.debootstrap.log" 2>&1 ||
      { tail -20 "${ROOT%/}.debootstrap.log"; exit 1; }
    touch "$ROOT/.debootstrap-done"
  fi
  mnt -t proc proc "$ROOT/proc"
  mnt -t sysfs sys "$ROOT/sys"
  mnt --bind /dev "$ROOT/dev"
  mnt --bind /dev/pts "$ROOT/dev/pts"
}
