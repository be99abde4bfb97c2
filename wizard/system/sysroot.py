"""All system reads go through one root, so tests can point the wizard at fixture trees.

``WIZARD_SYSROOT`` (tests only) prefixes every absolute path the probes read:
``/proc/...``, ``/sys/fs/cgroup/...``, and the Jupyter runtime and data dirs when
they are absolute system paths. The default is ``/``, the real system.
"""

from __future__ import annotations

import os

# Cap on what one read returns: probe files are small, and a garbage file that is
# huge (or endless, like /dev/zero) must not eat the memory we are diagnosing.
MAX_READ = 1 << 20


class SysRoot:
    def __init__(self, root: str | None = None) -> None:
        root = root if root is not None else os.environ.get("WIZARD_SYSROOT", "/")
        self.root = os.path.abspath(root)
        self.real = self.root == "/"

    def path(self, p: str) -> str:
        """The real path of system path ``p`` under this root."""
        if self.real or not os.path.isabs(p):
            return p
        return os.path.join(self.root, p.lstrip("/"))

    def read_bytes(self, p: str, limit: int = MAX_READ) -> bytes:
        """Up to ``limit`` bytes of ``p``. Raises OSError as ``open`` does."""
        with open(self.path(p), "rb") as f:
            return f.read(limit)

    def read_text(self, p: str, limit: int = MAX_READ) -> str:
        """``p`` decoded as UTF-8, undecodable bytes replaced. Raises OSError."""
        return self.read_bytes(p, limit).decode("utf-8", "replace")

    def listdir(self, p: str) -> list[str]:
        return os.listdir(self.path(p))

    def exists(self, p: str) -> bool:
        return os.path.exists(self.path(p))
