"""The recorder's lock: one recorder per database, and who holds it.

An exclusive, non-blocking ``flock`` on ``<db>.lock`` (it dies with the process, so a
killed recorder never blocks the next one); the file names the holder's pid, start
time and since when, which ``recorder_status`` reads without touching the lock.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from wizard.base.invocation import command
from wizard.system import procfs
from wizard.system.historydb import default_db_path

if TYPE_CHECKING:
    from wizard.base.shapes import RecorderStatus


def lock_path(db_path: str) -> str:
    return db_path + ".lock"


def recorder_status(db_path: str | None = None) -> RecorderStatus:
    """``{"running": bool, "pid", "since", "where"}`` from the recorder's lock file.

    Read only: the lock itself is not touched, so a recorder starting meanwhile is
    never disturbed. ``running`` means the pid named there is alive and is the
    process that wrote it (same start time).
    """
    db_path = db_path or default_db_path()
    out: RecorderStatus = {"running": False, "pid": None, "since": None, "where": None}
    try:
        with open(lock_path(db_path), encoding="utf-8", errors="replace") as f:
            text = f.read(4096)
    except OSError:
        return out
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        info[key.strip()] = value.strip()
    try:
        pid = int(info.get("pid", ""))
        since = float(info.get("since", ""))
    except ValueError:
        return out
    out.update({"pid": pid, "since": since, "where": info.get("where") or None})
    out["running"] = _same_process(pid, info.get("start"))
    return out


def _same_process(pid: int, start: str | None) -> bool:
    if not os.path.isdir("/proc/self"):
        return _exists(pid)
    stat = procfs.read_stat("/proc", pid)
    if stat is None:
        return os.path.isdir(f"/proc/{pid}") and _exists(pid)
    if stat.zombie:
        return False
    return start is None or str(stat.start_ticks) == start


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class Busy(Exception):
    """Another recorder holds the lock: ``args[0]`` is its recorder_status()."""


class Lock:
    """An exclusive, non-blocking flock on ``<db>.lock`` naming its holder."""

    def __init__(self, db_path: str, where: str | None = None) -> None:
        self.path = db_path + ".lock"
        self.where = where or command("watch")
        self.fd: int | None = None

    def acquire(self) -> Lock:
        """Take the lock or raise Busy. The file then says who holds it, and since when.
        OSError when it cannot be taken (no flock on this system: Windows)."""
        try:
            import fcntl
        except ImportError:
            raise OSError("this system has no flock (Windows?)") from None

        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(recorder_status(self.path[: -len(".lock")])) from None
        except OSError:
            os.close(fd)
            raise
        stat = procfs.read_stat("/proc", os.getpid())
        start = stat.start_ticks if stat is not None else None
        text = f"pid={os.getpid()}\nsince={time.time():.3f}\nwhere={self.where}\n"
        if start is not None:
            text += f"start={start}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None
