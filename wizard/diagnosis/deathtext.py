"""One line per recorded kernel death, as every report words it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from wizard.base import fmt


def short_path(path: str | None) -> str | None:
    """``~/x.ipynb`` for a path in the home directory; other paths as they are."""
    home = os.path.expanduser("~").rstrip("/")
    if path and home and path.startswith(home + "/"):
        return "~" + path[len(home) :]
    return path


def describe(d: Mapping[str, Any], now: float | None = None) -> str:
    """One line: "big.ipynb's kernel (pid 4941) died at 18:44:21 holding 1.9 GiB of a
    2.0 GiB limit; the OOM killer fired then"."""
    now = now or time.time()
    who = f"{short_path(d['notebook'])}'s kernel" if d.get("notebook") else "A kernel"
    stamp = time.localtime(d["time"])
    fmt_t = "%H:%M:%S" if now - d["time"] < 20 * 3600 else "%Y-%m-%d %H:%M:%S"
    text = f"{who} (pid {d['pid']}) died at {time.strftime(fmt_t, stamp)}"
    if d.get("rss_bytes") is not None:
        text += f" holding {fmt.size(d['rss_bytes'])}"
        if d.get("limit_bytes"):
            text += f" of a {fmt.size(d['limit_bytes'])} limit"
    cause = d.get("cause")
    if cause == "oom-kill":
        text += "; the OOM killer fired then"
    elif cause == "shutdown":
        text += "; it was shut down on request, not a crash"
    elif cause == "signal":
        text += f"; killed by {d.get('signal') or 'a signal'}"
        if d.get("signal") == "SIGKILL":
            text += (
                " (no OOM kill was recorded)" if "no OOM kill" in (d.get("detail") or "") else ""
            )
    elif cause == "exit":
        text += f"; it exited with code {d.get('exit_code')}"
    else:
        text += "; how, the recorder could not tell"
    return text


STARTUP_EXIT = 30.0  # seconds: an exit this soon after the start is a failed start


def _who(d: Mapping[str, Any]) -> str:
    nb = d.get("notebook")
    return f"{os.path.basename(nb)}'s kernel" if nb else "A kernel"


def _holding(d: Mapping[str, Any]) -> str:
    if d.get("rss_bytes") is None:
        return ""
    text = f" holding {fmt.size(d['rss_bytes'])}"
    if d.get("limit_bytes"):
        text += f" of its {fmt.size(d['limit_bytes'])} limit"
    return text


def cause_line(d: Mapping[str, Any]) -> tuple[str, str]:
    """``(summary, label)`` of a recorded death: the notification's one line.

    "big.ipynb's kernel was killed by the out-of-memory killer holding 1.9 GiB of its
    2.0 GiB limit", with the label of the site's section that fits it.
    """
    from wizard.diagnosis import signals

    who = _who(d)
    cause = d.get("cause")
    sig = d.get("signal")
    if cause == "shutdown":
        return f"{who} was shut down on request", "jupyter-halt"
    if cause == "oom-kill":
        return (
            f"{who} was killed by the out-of-memory killer{_holding(d)}",
            "kernel-terminated-memory",
        )
    if cause == "signal" and sig:
        row = signals.BY_NAME.get(sig)
        label = row["next"] if row else "kernel-terminated-other"
        if sig == "SIGKILL":
            return (
                f"{who} was killed by SIGKILL, with no out-of-memory kill recorded{_holding(d)}",
                label,
            )
        where = " in native code" if row and row["cause"] == "native" else ""
        return f"{who} died of {sig}{where}", label
    if cause == "exit":
        code = d.get("exit_code")
        started = d.get("started")
        if started is not None and d.get("time") and d["time"] - started < STARTUP_EXIT:
            return f"{who} could not start: exited with code {code}", "kernel-cannot-start"
        # It ran, then exited: its own code (sys.exit, os._exit) or a library ended it.
        return f"{who} exited with code {code} after it had started", "kernel-terminated-other"
    return (
        f"{who} died, and how could not be told: it left no exit status or kernel-log record",
        "kernel-terminated-other",
    )
