"""Child memory cgroups for the tests that need a real limit (cgroup v1, as root).

``child_cgroup(limit)`` makes a child of this process's own memory cgroup with a
memory (and memory+swap) limit, yields it, and removes it afterwards, moving any
process still inside back to the parent first.
"""

import contextlib
import os
import sys
import time
from pathlib import Path

from conftest import need

V1_MEMORY = Path("/sys/fs/cgroup/memory")


def own_memory_cgroup():
    """This process's v1 memory cgroup path, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if "memory" in ctrls.split(","):
                    return path
    except OSError:
        return None
    return None


def writable_memory_controller():
    """``(own path, its directory)`` when this process may make child cgroups, else None."""
    own = own_memory_cgroup()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or own is None:
        return None
    d = V1_MEMORY / own.lstrip("/")
    if (d / "memory.limit_in_bytes").exists() and os.access(d, os.W_OK):
        return own, d
    return None


class ChildCgroup:
    def __init__(self, own, parent, name, limit):
        self.parent = parent
        self.dir = parent / name
        self.path = own.rstrip("/") + "/" + name  # as /proc/PID/cgroup names it
        self.limit = limit

    def add(self, pid):
        (self.dir / "cgroup.procs").write_text(str(pid))


def remove(cg, parent):
    """Move whatever is left into ``parent`` and remove ``cg``."""
    for _ in range(50):
        if not cg.exists():
            return
        try:
            pids = (cg / "cgroup.procs").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            try:
                (parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # the process has exited meanwhile
        try:
            cg.rmdir()
            return
        except OSError:
            time.sleep(0.1)
    cg.rmdir()  # one last time: let the error show


@contextlib.contextmanager
def child_cgroup(limit, prefix="wizard-test"):
    found = writable_memory_controller()
    need(found, "needs root and a writable cgroup v1 memory controller")
    own, parent = found
    cg = ChildCgroup(own, parent, f"{prefix}-{os.getpid()}-{time.monotonic_ns()}", limit)
    cg.dir.mkdir()
    try:
        (cg.dir / "memory.limit_in_bytes").write_text(str(limit))
        if (cg.dir / "memory.memsw.limit_in_bytes").exists():
            (cg.dir / "memory.memsw.limit_in_bytes").write_text(str(limit))
        cg.limit = int((cg.dir / "memory.limit_in_bytes").read_text())  # rounded to pages
        yield cg
    finally:
        remove(cg.dir, parent)
