"""How a kernel died: the evidence the recorder gathers, and the cause it adds up to.

A death is a dict of evidence (any of it may be missing)::

    returncode     int | None   Popen style: -11 is SIGSEGV, 3 is exit(3)
    status_source  "server" (the Jupyter server reaped its own child: exact),
                   "zombie" (/proc showed the exit status before the parent reaped it),
                   or None
    requested      "shutdown" | "restart" (the server was asked to stop it),
                   "unlisted" (its server no longer lists the kernel),
                   "server-gone" (its server stopped), or None
    oom            "kernel-log" (the kernel log names its pid),
                   "counter" (its cgroup's OOM-kill count rose meanwhile), or None
    oom_checked    True when an OOM kill would have been seen (a cgroup counter or the
                   kernel log could be read)
    log_signal     a signal the kernel log names for its pid (a segfault line), or None

``classify(evidence)`` turns it into ``(cause, signal, detail)``, where cause is one
of ``CAUSES``. The order matters: the kernel log naming the pid is proof of an
OOM kill; a stop on request explains any status that follows; an exact status
other than SIGKILL rules an OOM kill out (the OOM killer only sends SIGKILL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wizard.diagnosis import signals

OOM_KILL, SHUTDOWN, SIGNAL, EXIT, UNKNOWN = "oom-kill", "shutdown", "signal", "exit", "unknown"
CAUSES = (OOM_KILL, SHUTDOWN, SIGNAL, EXIT, UNKNOWN)


def signal_name(number: int | None) -> str | None:
    """``SIGSEGV`` for 11; ``signal 42`` for a number without a name; None for None."""
    return signals.signal_name(number)


def returncode_from_wait_status(status: int | None) -> int | None:
    """A raw ``waitpid`` status (as /proc/PID/stat field 52 holds it) -> Popen returncode."""
    if status is None or status < 0:
        return None
    sig = status & 0x7F
    if sig:
        return -sig
    return (status >> 8) & 0xFF


def describe_returncode(rc: int | None) -> tuple[str | None, int | None]:
    """``(signal name or None, exit code or None)`` of a Popen returncode."""
    if rc is None:
        return None, None
    if rc < 0:
        return signal_name(-rc), None
    if rc > 128 and rc - 128 in signals.NAMES:  # a shell in between reports 128 + signal
        return signal_name(rc - 128), None
    return None, rc


_REQUESTED = {
    "shutdown": "shut down on request",
    "restart": "restarted on request",
    "unlisted": "its server no longer lists it: shut down on request",
    "server-gone": "its Jupyter server stopped",
}


def classify(ev: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """``(cause, signal, detail)`` from the evidence dict (see the module doc)."""
    rc = ev.get("returncode")
    sig, code = describe_returncode(rc)
    how = {"server": "exit status from the server", "zombie": "exit status read from /proc"}.get(
        ev.get("status_source") or "", ""
    )
    if ev.get("oom") == "kernel-log":
        return OOM_KILL, "SIGKILL", "the kernel log names it as killed for lack of memory"
    if ev.get("requested"):
        detail: str = _REQUESTED.get(ev["requested"], ev["requested"])
        if sig or code is not None:
            detail += f" ({sig or f'exit code {code}'})"
        return SHUTDOWN, sig, detail
    if sig and sig != "SIGKILL":
        return SIGNAL, sig, how or "signal"
    if code is not None and rc is not None and rc >= 0:
        return EXIT, None, f"exit code {code}" + (f" ({how})" if how else "")
    if ev.get("oom") == "counter":
        return OOM_KILL, "SIGKILL", "its cgroup's OOM-kill count rose when it died"
    if sig == "SIGKILL":
        if ev.get("oom_checked"):
            why = "no OOM kill was counted: killed by someone (kill -9, a forced restart)"
        else:
            why = "most often the OOM killer, whose record could not be read here"
        return SIGNAL, sig, f"{how or 'signal'}; {why}"
    if ev.get("log_signal"):
        return SIGNAL, ev["log_signal"], "the kernel log shows the fault"
    return UNKNOWN, None, "it vanished between two samples and left no evidence"
