"""Live processes, for the commands that signal them: raw /proc on Linux, psutil elsewhere.

``processes()`` returns one of three views with the same methods: ``info(pid)``
(start time, owner, zombie, parent), ``rss``, ``descendants``, ``cmdline`` and
``signal``. The /proc view always reads the real /proc, never a test sysroot:
these pids get signals.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from wizard.system import procfs

if TYPE_CHECKING:
    from typing import Protocol

    class Procs(Protocol):
        """What every view answers."""

        def info(self, pid: int) -> ProcInfo | None: ...
        def rss(self, pid: int) -> int: ...
        def descendants(self, pid: int) -> set[int]: ...
        def cmdline(self, pid: int) -> list[str] | None: ...
        def signal(self, pid: int, name: str) -> None: ...


# {"start": epoch or None, "uid", "zombie": bool, "ppid"}
ProcInfo = dict[str, Any]


def processes() -> ProcProcesses | PsutilProcesses | Unknown:
    if sys.platform.startswith("linux") and os.path.isdir("/proc/self"):
        return ProcProcesses()
    try:
        return PsutilProcesses()
    except ImportError:
        return Unknown()


class Unknown:
    """No /proc and no psutil: nothing can be checked, so nothing is signalled."""

    def info(self, pid: int) -> ProcInfo | None:
        return {"start": None, "uid": None, "zombie": False, "ppid": None}

    def rss(self, pid: int) -> int:
        return 0

    def descendants(self, pid: int) -> set[int]:
        return set()

    def cmdline(self, pid: int) -> list[str] | None:
        return None

    def signal(self, pid: int, name: str) -> None:
        raise PermissionError(pid)


class ProcProcesses:
    """The real /proc (never a test sysroot: these pids get signals)."""

    proc = "/proc"

    def __init__(self) -> None:
        from wizard.system.sysroot import SysRoot

        self.btime = procfs.boot_time(SysRoot("/"))
        self.clk = procfs.clock_ticks()
        self.page = procfs.page_size()

    def info(self, pid: int) -> ProcInfo | None:
        """``{"start", "uid", "zombie", "ppid"}``, or None when there is no such process."""
        try:
            st = os.stat(f"{self.proc}/{pid}")
        except OSError:
            return None
        stat = procfs.read_stat(self.proc, pid)
        if stat is None:
            return None
        return {
            "start": stat.started(self.btime, self.clk),
            "uid": st.st_uid,
            "zombie": stat.zombie,
            "ppid": stat.ppid,
        }

    def rss(self, pid: int) -> int:
        return procfs.statm_rss(self.proc, pid, self.page) or 0

    def descendants(self, pid: int) -> set[int]:
        return procfs.ProcTree(self.proc).descendants(pid)

    def cmdline(self, pid: int) -> list[str] | None:
        return procfs.read_cmdline(self.proc, pid)

    def signal(self, pid: int, name: str) -> None:
        import signal

        os.kill(pid, getattr(signal, name))


class PsutilProcesses:
    def __init__(self) -> None:
        import psutil

        self.psutil = psutil

    def info(self, pid: int) -> ProcInfo | None:
        ps = self.psutil
        try:
            p = ps.Process(pid)
            with p.oneshot():
                uid = p.uids().real if hasattr(p, "uids") else None
                return {
                    "start": p.create_time(),
                    "uid": uid,
                    "zombie": p.status() == ps.STATUS_ZOMBIE,
                    "ppid": p.ppid(),
                }
        except ps.ZombieProcess:
            return {"start": None, "uid": None, "zombie": True, "ppid": None}
        except ps.AccessDenied:  # there, but not ours to check: never signalled, never "gone"
            return {"start": None, "uid": None, "zombie": False, "ppid": None}
        except ps.Error:
            return None

    def rss(self, pid: int) -> int:
        try:
            return self.psutil.Process(pid).memory_info().rss
        except self.psutil.Error:
            return 0

    def descendants(self, pid: int) -> set[int]:
        try:
            return {c.pid for c in self.psutil.Process(pid).children(recursive=True)}
        except self.psutil.Error:
            return set()

    def cmdline(self, pid: int) -> list[str] | None:
        try:
            return self.psutil.Process(pid).cmdline()
        except self.psutil.Error:
            return None

    def signal(self, pid: int, name: str) -> None:
        ps = self.psutil
        try:
            p = ps.Process(pid)
            p.kill() if name == "SIGKILL" else p.terminate()
        except ps.NoSuchProcess:
            raise ProcessLookupError(pid) from None
        except ps.AccessDenied:
            raise PermissionError(pid) from None
