#!/bin/busybox sh
# PID 1 of the guest: mount the host's / read-only under a tmpfs overlay, give it
# a fresh proc, sys and dev and a cgroup2 hierarchy with the memory and pids
# controllers, and run the scenario runner in it. /tmp stays the host's (writable
# through the overlay), so an interpreter in a virtualenv under /tmp runs too.
# Every line this prints goes to the serial console, kept by the host as console.log.
/bin/busybox --install -s /bin
export PATH=/bin

say() { echo "vm-init: $*"; }
die() { say "FAILED: $*"; poweroff -f; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
    insmod "/modules/$m" || die "insmod $m"
done

# 9p's default msize (128K) makes every Python import several round trips;
# cache=loose is safe because nothing on the host changes under a test run.
P9=trans=virtio,version=9p2000.L,msize=524288
mount -t 9p -o "$P9,ro,cache=loose" hostroot /host || die "mount hostroot"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot \
    || die "mount overlay"

R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup || die "mount cgroup2"
echo "+memory +pids" > $R/sys/fs/cgroup/cgroup.subtree_control || die "enable controllers"
mkdir -p $R/run/vm-out
mount -t 9p -o "$P9" out $R/run/vm-out || die "mount out"

# The host wrote the interpreter, the checkout and the runner's arguments here.
. $R/run/vm-out/job.sh
say "ready after $(cut -d' ' -f1 /proc/uptime)s"
chroot $R /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$VM_PYTHON" "$VM_REPO/tests/vm/guest/runner.py" /run/vm-out $VM_ARGS
say "runner exited $?"
umount $R/run/vm-out
poweroff -f
