"""Userspace OOM killers: systemd-oomd and earlyoom, which the kernel log never names.

systemd-oomd kills every process of a cgroup with SIGKILL on memory pressure or
swap use: no kernel ``Killed process`` line, no ``memory.events`` ``oom_kill``; its
journal says ``Killed <cgroup> due to memory pressure for <unit> being X% > Y% for
> Ns with reclaim activity`` and it increments the ``user.oomd_kill`` xattr of that
cgroup. earlyoom watches the host's free memory (not any cgroup's) and sends
SIGTERM, then SIGKILL; its journal says ``sending SIGTERM to process PID uid U
"NAME": ...``. A kernel ending on SIGTERM then looks like a clean shutdown.

Read here: the daemons running (``/proc/*/comm``), their journal (``journalctl``
under a short timeout, where this user may read it) and the xattr on given cgroup
directories. Nothing here raises: what cannot be read becomes a status line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from wizard.system import procfs

if TYPE_CHECKING:
    from wizard.base.shapes import Kill
    from wizard.system.sysroot import SysRoot

DAEMONS = ("systemd-oomd", "earlyoom")
JOURNAL_TIMEOUT = 2.0
JOURNAL_SINCE = "-1d"
XATTR = "user.oomd_kill"

_OOMD = re.compile(r"Killed (/\S*) due to (.+)$")
_EARLY = re.compile(r'sending (SIG[A-Z]+) to process (\d+) uid (\d+) "([^"]*)"')


def parse_journal(lines: Iterable[str]) -> list[Kill]:
    """Kills from journal lines ``"<epoch seconds> <identifier>[pid]: <message>"``
    (``journalctl -o short-unix``): ``[{"killer", "time", "signal", "cgroup", "pid",
    "uid", "name", "reason"}]``, oldest first; unknown fields are None."""
    out: list[Kill] = []
    for line in lines:
        head, sep, msg = line.partition(": ")
        if not sep:
            continue
        words = head.split()
        try:
            when = float(words[0]) if words else None
        except ValueError:
            when = None
        kill: Kill = {"time": when, "signal": None, "cgroup": None, "pid": None, "uid": None}
        kill |= {"name": None, "reason": None}
        if m := _OOMD.search(msg):
            if "oomd" not in head:
                continue
            kill |= {"killer": "systemd-oomd", "signal": "SIGKILL", "cgroup": m.group(1)}
            kill["reason"] = m.group(2).strip()[:200]
        elif m := _EARLY.search(msg):
            kill |= {"killer": "earlyoom", "signal": m.group(1), "pid": int(m.group(2))}
            kill |= {"uid": int(m.group(3)), "name": m.group(4)[:64]}
        else:
            continue
        out.append(kill)
    return out


def read_journal(timeout: float = JOURNAL_TIMEOUT) -> tuple[list[str] | None, str | None]:
    """``(lines, None)`` of the daemons' journal for the last day, or ``(None, reason)``."""
    import subprocess

    cmd = ["journalctl", "--no-pager", "-q", "-o", "short-unix", "--since", JOURNAL_SINCE]
    for unit in DAEMONS:
        cmd += ["-u", unit + ".service"]
    try:
        done = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=dict(os.environ, LC_ALL="C", SYSTEMD_PAGER=""),
        )
    except FileNotFoundError:
        return None, "journalctl is not installed"
    except subprocess.TimeoutExpired:
        return None, f"journalctl took longer than {timeout:g} s"
    except OSError as e:
        return None, f"journalctl: {e.strerror or type(e).__name__}"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().split("\n")[0][:200]
        return None, "journalctl failed: " + (err or f"exit status {done.returncode}")
    return done.stdout[-(1 << 20) :].decode("utf-8", "replace").splitlines(), None


def is_daemon(argv0: str | None) -> str | None:
    """The daemon of ``DAEMONS`` a command line's program is, or None."""
    base = (argv0 or "").rsplit("/", 1)[-1]
    return base if base in DAEMONS else None


def running(root: SysRoot) -> list[str]:
    """The daemons among ``DAEMONS`` with a process this system shows."""
    proc = procfs.proc_dir(root)
    found: set[str] = set()
    try:
        pids = procfs.list_pids(proc)
    except OSError:
        return []
    for pid in pids:
        try:
            comm = procfs.read(f"{proc}/{pid}/comm", 64).decode("ascii", "replace").strip()
        except OSError:
            continue
        if comm in DAEMONS or (comm == "systemd-oomd"[:15]):
            found.add("systemd-oomd" if comm.startswith("systemd-oomd") else comm)
    return sorted(found)


def oomd_xattrs(root: SysRoot, dirs: Iterable[str]) -> dict[str, int]:
    """``{directory: kills}`` of the ``user.oomd_kill`` xattr on each cgroup directory."""
    out: dict[str, int] = {}
    for d in dirs:
        try:
            raw = os.getxattr(root.path(d), XATTR)
        except (OSError, AttributeError, ValueError):
            continue  # not set (ENODATA), no xattrs here, or not Linux
        s = raw.decode("ascii", "replace").strip("\x00 \n")
        if s.isdigit() and len(s) < 12:
            out[d] = int(s)
    return out


FIXTURE_JOURNAL = "/var/log/wizard-fixture-journal"  # a fixture tree's journal stand-in


def probe(
    root: SysRoot, cgroup_dirs: Iterable[str] = (), daemons: Iterable[str] | None = None
) -> dict[str, Any]:
    """``{"running", "kills", "xattr_kills", "journal_status"}``.

    ``daemons``: the ones a caller's own scan of /proc found running (the kernels probe
    sees every command line anyway, ``is_daemon``); None to scan here. The journal is
    asked only when one of them runs: neither daemon, no kill of theirs to find, and
    the wizard's start is spared a ``journalctl``.

    ``journal_status`` is "ok", "not read: ..." or "unreadable: <reason>". A fixture
    tree's journal is the file FIXTURE_JOURNAL in it (journalctl reads only the real
    system's).
    """
    found = sorted(running(root) if daemons is None else daemons)
    if root.real and not found:
        lines, reason = None, None
    elif root.real:
        lines, reason = read_journal()
    else:
        try:
            lines, reason = root.read_text(FIXTURE_JOURNAL).splitlines(), None
        except OSError:
            lines, reason = None, "no journal in this tree"
    return {
        "running": found,
        "kills": parse_journal(lines or []),
        "xattr_kills": oomd_xattrs(root, cgroup_dirs),
        "journal_status": "ok"
        if lines is not None
        else ("unreadable: " + reason if reason else "not read: neither daemon runs here"),
    }
