"""A real cgroup v2 kernel for the tests: a stock Debian kernel booted under qemu.

The guest has no disk image: the host's ``/`` is shared read-only over 9p under a
tmpfs overlay, so it runs the host's Python and this checkout as they are. Its init
(``init.sh``, in an initramfs of busybox-static plus a few modules) mounts cgroup2,
enables the memory and pids controllers and runs ``guest/runner.py``, which plays
every scenario of one boot and writes one JSON file per scenario into a second,
writable 9p share. The host reads those files after qemu has exited.

kernel.py     fetch and unpack the kernel package (cached)
initramfs.py  resolve the modules and write the initramfs (cached)
boot.py       run qemu once, with a hard timeout, and collect the results
dump.py       write a scenario's captured files out for reading (WIZARD_VM_DUMP)
guest/        what runs inside the guest
"""
