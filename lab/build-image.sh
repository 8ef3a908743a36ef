#!/usr/bin/env bash
# Build the lab's Debian base image from Debian's own packages:
#   debootstrap -> small tweaks in the chroot -> mkfs.ext4 -d -> qcow2
# plus the kernel and initrd next to it (the launcher boots with -kernel/-initrd).
#
# The result lives in $LAB_IMAGE_CACHE/<release>-<flavour>-<recipe hash>/ (outside the checkout, so a
# fresh clone reuses it) and is reused until this script, lab/image/* or the variables below change. The
# directory is printed on stdout as the last line, so callers can do
#   image_dir=$(lab/build-image.sh | tail -n1)
# Each Debian release is its own image (bookworm-preloaded-<hash>, trixie-preloaded-<hash>, ...);
# a scenario that mixes releases gets one per release from `lab/labctl images`.
#
# Usage: LAB_RELEASE=bookworm|trixie lab/build-image.sh
#        lab/build-image.sh --dir    (print the directory this recipe maps to, cached or not; build nothing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

# The one variable a second platform changes (e.g. LAB_RELEASE=trixie). Every name below exists in
# both Debian 12 (bookworm) and Debian 13 (trixie).
LAB_RELEASE=${LAB_RELEASE:-bookworm}
[[ "$LAB_RELEASE" =~ ^[a-z][a-z0-9-]*$ ]] || { echo "lab-image: LAB_RELEASE must be a Debian codename, not '$LAB_RELEASE'" >&2; exit 2; }
LAB_MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SECURITY_MIRROR=${LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
LAB_IMAGE_CACHE=${LAB_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/celery-kit-lab/images}
LAB_DISK_SIZE=${LAB_DISK_SIZE:-4G}
# Debian packages the kit's roles install, preinstalled at native speed (apt under TCG takes
# minutes per VM). The roles still run their apt tasks; on this image they change nothing.
# LAB_PRELOAD= (empty) builds the bare image, which proves a stock Debian converges.
LAB_PRELOAD=${LAB_PRELOAD-redis-server supervisor python3-venv python3-packaging nftables prometheus-redis-exporter}
# Services those packages enable on install; on the lab's hosts only the roles decide.
preload_disabled_units=(redis-server.service supervisor.service nftables.service prometheus-redis-exporter.service)

# What a stock Debian cloud image has, minus cloud-init (see lab/image/lab-seed.service):
# systemd as init, udev, dbus, SSH, Python for Ansible, sudo, CA certificates.
packages=(
  systemd systemd-sysv udev dbus
  linux-image-amd64 initramfs-tools
  openssh-server sudo
  python3 python3-apt
  iproute2 iputils-ping netbase procps ca-certificates
)

# Timers that would take the apt lock or burn CPU right after boot; the lab's
# VMs live for minutes, so they never need them.
masked_units=(
  apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer
  fstrim.timer e2scrub_reap.service systemd-firstboot.service
  systemd-networkd-wait-online.service
)

recipe_hash() {
  {
    cat "$0" "$here"/image/*
    printf '%s\n' "$LAB_RELEASE" "$LAB_MIRROR" "$LAB_SECURITY_MIRROR" "$LAB_DISK_SIZE" "$LAB_PRELOAD"
  } | sha256sum | cut -c1-12
}

images="$LAB_IMAGE_CACHE"
flavor=$([[ -n "$LAB_PRELOAD" ]] && echo preloaded || echo bare)
out="$images/$LAB_RELEASE-$flavor-$(recipe_hash)"
if [[ "${1:-}" == --dir ]]; then
  echo "$out"
  exit 0
fi
if [[ -f "$out/base.qcow2" && -f "$out/vmlinuz" && -f "$out/initrd.img" ]]; then
  echo "lab-image: cached $out" >&2
  echo "$out"
  exit 0
fi

mkdir -p "$images"
# A build interrupted earlier may have left a work directory (possibly with
# /proc still mounted inside it); clear it before starting over.
for stale in "$images"/*.work; do
  [[ -e "$stale" ]] || continue
  awk -v p="$stale/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$stale"
done

work="$out.work"
rootfs="$work/rootfs"
mkdir -p "$rootfs"
cleanup() {
  mountpoint -q "$rootfs/proc" && umount -l "$rootfs/proc"
  mountpoint -q "$rootfs/sys" && umount -l "$rootfs/sys"
  return 0
}
trap cleanup EXIT

start=$(date +%s)
echo "lab-image: debootstrap $LAB_RELEASE from $LAB_MIRROR" >&2
read -r -a preload <<<"$LAB_PRELOAD"
include=("${packages[@]}" "${preload[@]}")
debootstrap --variant=minbase --include="$(IFS=,; echo "${include[*]}")" \
  "$LAB_RELEASE" "$rootfs" "$LAB_MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"

# Apt: plain HTTP mirror, the same three suites a Debian cloud image lists.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $LAB_MIRROR
Suites: $LAB_RELEASE $LAB_RELEASE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $LAB_SECURITY_MIRROR
Suites: $LAB_RELEASE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

echo "/dev/vda / ext4 rw,noatime,errors=remount-ro 0 0" >"$rootfs/etc/fstab"
echo "debian" >"$rootfs/etc/hostname"
rm -f "$rootfs/etc/resolv.conf"   # debootstrap copied the build host's; the seed writes the VM's

# A small initrd (only what finds a virtio root disk) decompresses and runs
# much faster under TCG than the default MODULES=most one.
cat >"$rootfs/etc/initramfs-tools/conf.d/lab-virtio.conf" <<'EOF'
MODULES=list
EOF
printf '%s\n' virtio_pci virtio_blk ext4 >>"$rootfs/etc/initramfs-tools/modules"
in_root update-initramfs -u -k all >/dev/null

# Per-machine identity is created on first boot, as in a cloud image.
rm -f "$rootfs"/etc/ssh/ssh_host_*
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

install -m 0755 "$here/image/lab-seed" "$rootfs/usr/local/sbin/lab-seed"
install -m 0644 "$here/image/lab-seed.service" "$rootfs/etc/systemd/system/lab-seed.service"
install -D -m 0644 "$here/image/seed-device-timeout.conf" \
  "$rootfs/etc/systemd/system/"'dev-disk-by\x2dlabel-LABSEED.device.d'/lab-timeout.conf
in_root systemctl enable lab-seed.service systemd-networkd.service >/dev/null 2>&1
in_root systemctl mask "${masked_units[@]}" >/dev/null 2>&1
if [[ -n "$LAB_PRELOAD" ]]; then
  in_root systemctl disable "${preload_disabled_units[@]}" >/dev/null 2>&1 || true
fi

in_root apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
# No package lists ship in the image, so nothing may claim they are fresh:
# Ansible's `apt: cache_valid_time` judges freshness by these timestamps.
rm -f "$rootfs/var/lib/apt/periodic/update-success-stamp"
touch -d @0 "$rootfs/var/lib/apt/lists"
cleanup

kernels=("$rootfs"/boot/vmlinuz-*)
cp "${kernels[-1]}" "$work/vmlinuz"
cp "$rootfs/boot/initrd.img-${kernels[-1]##*/vmlinuz-}" "$work/initrd.img"
echo "lab-image: mkfs.ext4 -d ($LAB_DISK_SIZE)" >&2
mkfs.ext4 -q -F -L root -d "$rootfs" "$work/disk.raw" "$LAB_DISK_SIZE"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/base.qcow2"
rm -f "$work/disk.raw"
rm -rf "$rootfs"

mkdir -p "$out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/debootstrap.log" "$out/"
mv "$work/base.qcow2" "$out/base.qcow2"   # last: its presence marks the image complete
rmdir "$work"
# Older recipes of this release are dead weight (a running VM keeps its open backing file).
for old in "$images/$LAB_RELEASE-$flavor"-*; do
  [[ "$old" == "$out" || "$old" == *.work ]] || rm -rf "$old"
done
echo "lab-image: built $out in $(( $(date +%s) - start ))s" >&2
echo "$out"
