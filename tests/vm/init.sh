#!/bin/sh
# PID 1 of the test VM (busybox). Loads the modules, mounts the host's root file system
# (9p, read-only) under a tmpfs overlay at /newroot, mounts the results share, and runs the
# check runner inside that root. Whatever happens, it powers the VM off at the end.
export PATH=/bin:/sbin
up() { cut -d' ' -f1 /proc/uptime; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
echo "INIT: kernel up at $(up) s"

for m in $(cat /etc/modules.load); do
  modprobe "$m" || echo "INIT: modprobe $m failed"
done
ip link set lo up 2>/dev/null

opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,cache=loose,ro" hostroot /hostroot || echo "INIT: 9p hostroot mount failed"
mount -t 9p -o "$opts" vmout /vmout || echo "INIT: 9p vmout mount failed"
mount -t tmpfs -o size=768m tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/hostroot,upperdir=/ovl/upper,workdir=/ovl/work /newroot \
  || echo "INIT: overlay mount failed"
for d in dev proc sys; do mount --bind /$d /newroot/$d; done
mount --bind /dev/pts /newroot/dev/pts
mount --bind /dev/shm /newroot/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
# The host may be a container; the guest is not (systemd tools would believe these markers).
rm -f /newroot/.dockerenv /newroot/run/.containerenv
mkdir -p /newroot/vmout
mount --bind /vmout /newroot/vmout
echo "INIT: root ready at $(up) s"
echo "guest booted to its checks in $(up) s (kernel start to the check runner)" > /vmout/boot.txt

. /vmout/run.env
chroot /newroot /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 /bin/bash "$REPO/tests/vm/guest/runner.sh"
echo "INIT: runner exited with $? at $(up) s"

sync
umount /newroot/vmout 2>/dev/null
umount /vmout 2>/dev/null
poweroff -f
