"""The guest's initramfs: busybox-static, ``init.sh`` and the modules it loads.

Written as an uncompressed ``newc`` cpio archive by hand, so building it needs no
``cpio`` and no root-owned staging tree. It depends only on the kernel release,
busybox and ``init.sh``: the host paths the guest needs come at boot time through
the output share (see ``boot.py``), so one archive serves every checkout.
"""

import hashlib
import lzma
import stat
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT = HERE / "init.sh"
BUSYBOX = Path("/bin/busybox")

# What mounting the host's / over virtio-9p under an overlay needs; the rest
# (virtio_ring, virtio_pci_modern_dev, fscache, ...) comes from modules.dep.
WANTED = ("virtio_pci", "9pnet_virtio", "9p", "netfs", "overlay")


def _name(relpath):
    """Module name of ``kernel/fs/9p/9p.ko[.xz]``, with ``-`` and ``_`` alike."""
    base = relpath.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def load_order(modules_dir, wanted=WANTED):
    """Module files (paths relative to ``modules_dir``) in an order insmod accepts."""
    deps = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {_name(m): m for m in deps}
    order = []

    def visit(mod):
        if mod in order:
            return
        # modules.dep lists a module's dependencies with the innermost last
        for dep in reversed(deps[mod]):
            visit(dep)
        order.append(mod)

    for name in wanted:
        if name not in by_name:
            raise RuntimeError(f"no module {name} in {modules_dir}/modules.dep")
        visit(by_name[name])
    return order


def _module_bytes(path):
    data = path.read_bytes()
    # busybox's insmod may lack xz support; the kernel takes the plain object
    return lzma.decompress(data) if path.suffix == ".xz" else data


class _Cpio:
    """A minimal ``newc`` writer (the format the kernel unpacks)."""

    def __init__(self):
        self.parts = []
        self.ino = 1

    def add(self, name, mode, data=b"", rdev=(0, 0)):
        self.ino += 1
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1]]
        fields += [len(name) + 1, 0]
        head = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._padded(head + name.encode() + b"\0")
        self._padded(data)

    def _padded(self, b):
        self.parts.append(b + b"\0" * (-len(b) % 4))

    def bytes(self):
        self.add("TRAILER!!!", 0)
        return b"".join(self.parts)


def build(kernel, cache):
    """Path of the initramfs for ``kernel``, built once per release/init/busybox."""
    modules = load_order(kernel.modules)
    key = hashlib.sha256()
    for part in (kernel.release.encode(), INIT.read_bytes(), BUSYBOX.read_bytes()):
        key.update(hashlib.sha256(part).digest())
    key.update("\n".join(modules).encode())
    out = cache / f"initramfs-{kernel.release}-{key.hexdigest()[:12]}.cpio"
    if out.is_file():
        return out
    c = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "modules", "host", "rw", "newroot"):
        c.add(d, stat.S_IFDIR | 0o755)
    # The kernel opens /dev/console for init before anything can mount devtmpfs.
    c.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    c.add("bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes())
    c.add("init", stat.S_IFREG | 0o755, INIT.read_bytes())
    names = []
    for rel in modules:
        name = _name(rel) + ".ko"
        names.append(name)
        c.add("modules/" + name, stat.S_IFREG | 0o644, _module_bytes(kernel.modules / rel))
    c.add("modules/order", stat.S_IFREG | 0o644, ("\n".join(names) + "\n").encode())
    tmp = out.with_suffix(".partial")
    tmp.write_bytes(c.bytes())
    tmp.rename(out)
    for old in cache.glob("initramfs-*.cpio"):
        if old != out:  # built from an older init.sh or busybox: never used again
            old.unlink()
    return out
