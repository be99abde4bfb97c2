"""The stock Debian kernel: ``apt-get download`` + ``dpkg-deb -x``, never installed.

Unpacked once into the cache directory; ``depmod -b`` writes the ``modules.dep`` the
package leaves to its postinst.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

# The metapackage names the newest 6.1 image the configured archives offer.
META = "linux-image-amd64"
_IMAGE = re.compile(r"^linux-image-(6\.1\.0-\d+-amd64)$")


def cache_dir():
    """``$WIZARD_VM_CACHE``, else ``$XDG_CACHE_HOME/kernel-wizard-vm``, else ``~/.cache/...``."""
    if os.environ.get("WIZARD_VM_CACHE"):
        return Path(os.environ["WIZARD_VM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "kernel-wizard-vm"


def tools_missing():
    """Host commands the harness needs that are not installed (empty when all are)."""
    wanted = ("qemu-system-x86_64", "apt-get", "apt-cache", "dpkg-deb", "depmod")
    missing = [t for t in wanted if shutil.which(t) is None]
    if not Path("/bin/busybox").is_file():
        missing.append("/bin/busybox (busybox-static)")
    return missing


def image_package():
    """The ``linux-image-6.1.0-NN-amd64`` package the metapackage depends on."""
    out = subprocess.run(
        ["apt-cache", "depends", META], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for line in out.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and _IMAGE.match(name):
            return name
    raise RuntimeError(f"apt-cache depends {META} names no 6.1 image:\n{out}")


class Kernel:
    def __init__(self, root, release):
        self.root = root  # the unpacked package
        self.release = release  # "6.1.0-57-amd64"
        self.vmlinuz = root / "boot" / f"vmlinuz-{release}"
        self.modules = root / "lib" / "modules" / release


def fetch(cache=None):
    """The unpacked kernel, downloading and unpacking it on the first call."""
    cache = cache or cache_dir()
    package = image_package()
    release = _IMAGE.match(package).group(1)
    root = cache / package
    kernel = Kernel(root, release)
    if (kernel.modules / "modules.dep").is_file() and kernel.vmlinuz.is_file():
        return kernel
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / (package + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    subprocess.run(
        ["apt-get", "download", package],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    (deb,) = work.glob("*.deb")
    tree = work / "tree"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, timeout=300)
    subprocess.run(
        ["depmod", "-b", str(tree), release], check=True, capture_output=True, timeout=300
    )
    deb.unlink()  # 70 MB nobody needs once unpacked
    shutil.rmtree(root, ignore_errors=True)
    tree.rename(root)  # only a complete tree ever gets the final name
    shutil.rmtree(work, ignore_errors=True)
    return kernel
