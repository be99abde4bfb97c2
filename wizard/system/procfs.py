"""Raw reads of Linux's /proc, shared by the probes and the commands that act on processes.

Plain ``os.open``/``os.read`` on purpose: scanning thousands of processes this way
costs a fraction of what psutil does. ``proc`` arguments are the /proc directory
itself (``root.path("/proc")``), so fixture trees work.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from collections.abc import Collection

    from wizard.system.sysroot import SysRoot

Pid = Union[int, str]

CMDLINE_MAX = 64 * 1024  # the kernel's own cap on what /proc/PID/cmdline shows
MEMINFO = "/proc/meminfo"
VMSTAT = "/proc/vmstat"
PRESSURE = "/proc/pressure/memory"
SELF_CGROUP = "/proc/self/cgroup"
REAL = "/proc"  # the live system's, for processes this wizard started itself


def split_cmdline(data: bytes) -> list[str]:
    argv = [a.decode("utf-8", "replace") for a in data.rstrip(b"\0").split(b"\0")]
    if len(argv) == 1 and " " in argv[0]:
        # setproctitle-style: the process rewrote its command line as one string
        argv = argv[0].split()
    return argv


def read(path: str, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def statm_rss(proc: str, pid: Pid, page: int) -> int | None:
    try:
        return int(read(f"{proc}/{pid}/statm", 512).split()[1]) * page
    except (OSError, IndexError, ValueError):
        return None


class Stat:
    """The fields of ``/proc/PID/stat`` the wizard uses (the one parser of that file).

    ``state`` (R, S, Z...), ``ppid``, ``pgrp``, ``start_ticks`` (clock ticks after
    boot) and ``exit_code`` (field 52: the raw wait status of a zombie, else 0;
    None on kernels before 3.5).
    """

    __slots__ = ("exit_code", "pgrp", "ppid", "start_ticks", "state")

    def __init__(
        self, state: str, ppid: int, pgrp: int, start_ticks: int, exit_code: int | None
    ) -> None:
        self.state, self.ppid, self.pgrp = state, ppid, pgrp
        self.start_ticks, self.exit_code = start_ticks, exit_code

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    def started(self, btime: float | None, clk: int) -> float | None:
        """Start time in epoch seconds, or None when the boot time is unknown."""
        return None if btime is None else btime + self.start_ticks / clk


def parse_stat(text: str) -> Stat | None:
    """A ``Stat`` of the text of ``/proc/PID/stat``, or None when it is not one."""
    # the fields after "pid (comm) ": comm may hold spaces and parentheses
    f = text[text.rfind(")") + 2 :].split()
    try:
        exit_code = int(f[49]) if len(f) > 49 else None
        return Stat(f[0], int(f[1]), int(f[2]), int(f[19]), exit_code)
    except (IndexError, ValueError):
        return None


def read_stat(proc: str, pid: Pid) -> Stat | None:
    """``parse_stat`` of ``PROC/PID/stat``; None when the process is gone or unreadable."""
    try:
        return parse_stat(read(f"{proc}/{pid}/stat", 4096).decode("ascii", "replace"))
    except OSError:
        return None


def boot_time(root: SysRoot) -> int | None:
    """Boot time in epoch seconds from ``/proc/stat`` ``btime``, or None."""
    try:
        text = root.read_text("/proc/stat")
    except OSError:
        return None
    for line in text.split("\n"):
        if line.startswith("btime "):
            try:
                value = int(line.split()[1])
            except (ValueError, IndexError):
                return None
            return value if value > 0 else None
    return None


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_cmdline(proc: str, pid: Pid) -> list[str] | None:
    """argv of a process, or None when it is gone, unreadable or a kernel thread."""
    try:
        data = read(f"{proc}/{pid}/cmdline", CMDLINE_MAX)
    except OSError:
        return None
    return split_cmdline(data) if data else None


class ProcTree:
    """Children of a pid: /proc/PID/task/TID/children, else a ppid map of /proc/*/stat."""

    def __init__(self, proc: str) -> None:
        self.proc = proc
        # built only when children files are missing
        self.by_parent: dict[int, list[int]] | None = None

    def children(self, pid: int) -> list[int]:
        if self.by_parent is None:
            kids = self._from_children_files(pid)
            if kids is not None:
                return kids
            self._build_map()
        return (self.by_parent or {}).get(pid, [])

    def _from_children_files(self, pid: int) -> list[int] | None:
        """Children listed in task/*/children; None when the system has no such files."""
        base = f"{self.proc}/{pid}/task"
        try:
            tids = os.listdir(base)
        except FileNotFoundError:
            return None if os.path.isdir(f"{self.proc}/{pid}") else []
        except OSError:
            return []
        kids: list[int] = []
        for tid in tids:
            try:
                data = read(f"{base}/{tid}/children", 1 << 16)
            except FileNotFoundError:
                if os.path.isdir(f"{base}/{tid}"):
                    return None  # a kernel built without CONFIG_PROC_CHILDREN
                continue  # the thread ended
            except OSError:
                continue
            kids.extend(int(x) for x in data.split() if x.isdigit())
        return kids

    def _build_map(self) -> None:
        by_parent: dict[int, list[int]] = {}
        self.by_parent = by_parent
        try:
            names = os.listdir(self.proc)
        except OSError:
            return
        for name in names:
            if not name.isdigit():
                continue
            st = read_stat(self.proc, name)
            if st is not None:
                by_parent.setdefault(st.ppid, []).append(int(name))

    def descendants(self, pid: int, skip: Collection[int] = ()) -> set[int]:
        """Every process below ``pid``, leaving out ``skip`` pids and what is below them."""
        out: set[int] = set()
        todo = [pid]
        while todo:
            for c in self.children(todo.pop()):
                if c in out or c == pid or c in skip:
                    continue
                out.add(c)
                todo.append(c)
        return out


def proc_dir(root: SysRoot) -> str:
    """The /proc directory under a ``SysRoot``."""
    return root.path("/proc")


def has_proc(root: SysRoot) -> bool:
    """Whether this system (or fixture tree) has a /proc to read."""
    return os.path.isdir(root.path("/proc"))


def exists(proc: str, pid: Pid) -> bool:
    return os.path.isdir(f"{proc}/{pid}")


def list_pids(proc: str) -> list[str]:
    """The numeric entries of /proc, as strings. Raises OSError."""
    return [n for n in os.listdir(proc) if n.isdigit()]


def read_cmdline_raw(proc: str, pid: Pid, limit: int = CMDLINE_MAX) -> bytes:
    """The raw bytes of /proc/PID/cmdline (short ones in one read). Raises OSError."""
    fd = os.open(f"{proc}/{pid}/cmdline", os.O_RDONLY)
    try:
        data = os.read(fd, 4096)
        if len(data) == 4096:  # a long command line: read the rest
            data += os.read(fd, limit - 4096)
    finally:
        os.close(fd)
    return data


def owner(proc: str, pid: Pid) -> int:
    """The uid that owns a process. Raises OSError."""
    return os.stat(f"{proc}/{pid}").st_uid


def read_environ(proc: str, pid: Pid, limit: int) -> bytes:
    """The raw bytes of /proc/PID/environ. Raises OSError (PermissionError when not ours)."""
    return read(f"{proc}/{pid}/environ", limit)


def cwd(proc: str, pid: Pid) -> str:
    """A process's working directory. Raises OSError."""
    return os.readlink(f"{proc}/{pid}/cwd")


def meminfo(root: SysRoot, limit: int = 64 << 10) -> str:
    """The text of /proc/meminfo. Raises OSError."""
    return root.read_text(MEMINFO, limit)


def host_total(root: SysRoot) -> int | None:
    """MemTotal in bytes, or None."""
    try:
        for line in meminfo(root, 8192).split("\n"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def has_children_files(proc: str) -> bool:
    """Whether the kernel lists each task's children (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"{proc}/self/task/{os.getpid()}/children")
