"""One line per recorded kernel death, as every report words it."""

import os
import time

from wizard.base import fmt


def short_path(path):
    """``~/x.ipynb`` for a path in the home directory; other paths as they are."""
    home = os.path.expanduser("~").rstrip("/")
    if path and home and path.startswith(home + "/"):
        return "~" + path[len(home) :]
    return path


def describe(d, now=None):
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
