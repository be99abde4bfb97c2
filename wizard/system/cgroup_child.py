"""A memory cgroup of our own, below the one this process is in: made, read, removed.

``wizard run --memory-limit`` puts the notebook's code in one, so the limit is a
real cgroup limit, the peak of the whole process tree is measured, and the OOM
kills counted are exactly the code's. On cgroup v2 a cgroup with processes cannot
give its children a memory controller: where this process may, it moves them into
a leaf first (``enable_memory``) and says so. Where no child cgroup can be made (no
writable memory controller, a fixture tree), ``make`` raises OSError or ValueError
with the reason, and the caller says it.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING, Any

from wizard.system.cgroups import View

if TYPE_CHECKING:
    from wizard.system.sysroot import SysRoot

# A child cgroup of ours: {"version", "path", "limit_bytes", "note"}.
Child = dict[str, Any]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def own_memory_cgroup(root: SysRoot) -> tuple[int, str]:
    """(version, directory) of this process's memory cgroup; raises ValueError if none."""
    view = View(root)
    v2, v1, _ = view.membership()
    version, levels = view.memory_levels(v2, v1)
    if not levels:
        raise ValueError("no memory cgroup mounted")
    found: tuple[int, str] = (version, levels[0][0])
    return found


def make(root: SysRoot, name: str, limit_bytes: int | None) -> Child:
    """A new memory cgroup under our own, limited when asked. Raises OSError/ValueError."""
    if not root.real:
        raise ValueError("the system root is a fixture tree")
    version, base = own_memory_cgroup(root)
    parent = os.path.dirname(base)
    if version == 2 and os.path.basename(base) == LEAF and _has_memory(parent):
        base = parent  # a leaf made by an earlier run: its siblings get the controller
    path = os.path.join(base, name)
    note = None
    os.mkdir(path)
    try:
        if version == 1:
            if limit_bytes:
                write(os.path.join(path, "memory.limit_in_bytes"), str(limit_bytes))
                memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
                if os.path.exists(memsw):
                    write(memsw, str(limit_bytes))
        else:
            if not os.path.exists(os.path.join(path, "memory.max")):
                note = enable_memory(base)
            if limit_bytes:
                write(os.path.join(path, "memory.max"), str(limit_bytes))
                swap = os.path.join(path, "memory.swap.max")
                if os.path.exists(swap):
                    write(swap, "0")
    except OSError:
        os.rmdir(path)
        raise
    return {"version": version, "path": path, "limit_bytes": limit_bytes, "note": note}


LEAF = "wizard-leaf"  # where a v2 cgroup's own processes go so its children get controllers


def _has_memory(d: str) -> bool:
    try:
        return "memory" in _read(os.path.join(d, "cgroup.subtree_control")).split()
    except OSError:
        return False


def enable_memory(base: str) -> str | None:
    """Turn on the memory controller for ``base``'s children (v2); a note, or None.

    cgroup v2 allows no process in a cgroup that enables controllers for its
    children (EBUSY): a container's own cgroup always has some. When this process
    may move them all (each one ours), they go into a leaf ``base/wizard-leaf``
    first, as container init systems do; otherwise the OSError says why.
    """
    control = os.path.join(base, "cgroup.subtree_control")
    try:
        write(control, "+memory")
        return None
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
    leaf = os.path.join(base, LEAF)
    pids = [p for p in _read(os.path.join(base, "cgroup.procs")).split() if p.isdigit()]
    uid = os.geteuid()
    for pid in pids:
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue  # gone meanwhile
        if uid != 0 and owner != uid:
            raise OSError(
                errno.EBUSY,
                f"cgroup v2 allows no processes in {base} once its children have a memory "
                f"controller, and process {pid} there is not ours to move into a leaf",
            )
    os.makedirs(leaf, exist_ok=True)
    moved: list[str] = []
    try:
        for pid in pids:
            try:
                write(os.path.join(leaf, "cgroup.procs"), pid)
                moved.append(pid)
            except ProcessLookupError:
                continue  # exited meanwhile
        write(control, "+memory")
    except OSError as exc:
        for pid in moved:
            try:
                write(os.path.join(base, "cgroup.procs"), pid)
            except OSError:
                pass  # exited meanwhile
        raise OSError(
            exc.errno,
            f"cgroup v2 allows no processes in {base} once its children have a memory "
            f"controller, and moving its processes into a leaf failed: {exc.strerror}",
        ) from None
    return (
        f"cgroup v2 allows no processes in a cgroup whose children have controllers: "
        f"the {len(moved)} process(es) of {base} were moved into {leaf} first"
    )


def systemd_route(limit: int | str) -> str:
    """Where systemd runs: how to get a real cgroup limit instead (one clause), else ""."""
    import shutil

    if not (shutil.which("systemd-run") and os.path.isdir("/run/systemd/system")):
        return ""
    return (
        f"; systemd-run --user --scope -p MemoryMax={limit} before the command gives the "
        "run a real memory cgroup"
    )


def stats(cg: Child) -> dict[str, int | None]:
    """Peak usage, OOM kills and failures of a child cgroup (None where unreadable)."""
    path = cg["path"]
    out: dict[str, int | None] = {"peak_bytes": None, "oom_kills": None, "failcnt": None}
    names = (
        {"peak_bytes": "memory.max_usage_in_bytes", "failcnt": "memory.failcnt"}
        if cg["version"] == 1
        else {"peak_bytes": "memory.peak"}
    )
    for key, name in names.items():
        try:
            out[key] = int(_read(os.path.join(path, name)).strip())
        except (OSError, ValueError):
            pass  # memory.peak needs Linux 5.19; the sampled peak stands in
    events = "memory.oom_control" if cg["version"] == 1 else "memory.events"
    try:
        for line in _read(os.path.join(path, events)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                out["oom_kills"] = int(value)
            elif key == "max" and cg["version"] == 2:
                out["failcnt"] = int(value)
    except (OSError, ValueError):
        pass  # the counter is optional evidence; the exit signal still tells
    return out


def pids_in(cg: Child) -> list[int]:
    try:
        return [int(x) for x in _read(os.path.join(cg["path"], "cgroup.procs")).split()]
    except (OSError, ValueError):
        return []


def enter(cg: Child) -> None:
    """Move this process into the cgroup (a child calls it between fork and exec)."""
    write(os.path.join(cg["path"], "cgroup.procs"), str(os.getpid()))


def remove(cg: Child, errors: list[str]) -> bool:
    """Kill what is left in the cgroup and remove it."""
    import signal

    deadline = time.monotonic() + 3.0
    while True:
        for pid in pids_in(cg):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # already gone
        try:
            os.rmdir(cg["path"])
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if time.monotonic() > deadline:
                errors.append(f"could not remove the cgroup {cg['path']}: {exc.strerror}")
                return False
            time.sleep(0.05)
