"""Which kernel the OOM killer killed, without the recorder.

The kernel log gives the killed pid, its size, its cgroup and the time; a Jupyter
server restarts a dead kernel a second or two later under the same kernel id and
connection file. A running kernel is taken as the restart of a kill's victim when
it started within RESTART_SECONDS after the kill, in the cgroup the kill names (when
both are known), and its connection file is older than its process (written for
the kernel before it, not for this one). That is what the evidence suggests
("likely"), never proof: the recorder, watching the kernel die, proves it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from wizard.base import fmt

if TYPE_CHECKING:
    from wizard.base.shapes import Facts, Kernel, Kill

RESTART_SECONDS = 15.0  # a server restarts a dead kernel within a few seconds
OLDER_SECONDS = 0.5  # the connection file must predate the new process by this much


def _same_cgroup(kill: Kill, kernel: Kernel) -> bool | None:
    memcg = kill.get("memcg")
    cg = kernel.get("cgroup")
    path = cg.get("path") if cg else None
    if memcg is None or path is None:
        return None  # unknown: not counted for or against
    return memcg == path


def matches(facts: Facts) -> list[dict[str, Any]]:
    """``[{"kill", "kernel", "certainty", "why"}]``: kills (ours) matched to a restart."""
    mem = facts.get("memory") or {}
    kernels = (facts.get("kernels") or {}).get("kernels") or []
    out: list[dict[str, Any]] = []
    # Ours, and those in a kernel's own cgroup outside the wizard's (probes.collect).
    for kill in (mem.get("oom_log") or []) + (mem.get("oom_log_kernels") or []):
        when = kill.get("time")
        if not when:
            continue
        best: Kernel | None = None
        for k in kernels:
            started, conn_time = k.get("started"), k.get("connection_file_mtime")
            if started is None or not 0 <= started - when <= RESTART_SECONDS:
                continue
            if conn_time is None or conn_time > started - OLDER_SECONDS:
                continue  # a new kernel, not a restart
            same = _same_cgroup(kill, k)
            if same is False:
                continue
            if best is None or started < (best["started"] or 0.0):
                best = k
        if best is None:
            continue
        why = [
            f"kill of pid {kill['pid']} at {time.strftime('%H:%M:%S', time.localtime(when))}",
            f"kernel pid {best['pid']} started {(best['started'] or 0.0) - when:.1f} s later",
            "with a connection file older than its process (a restart)",
        ]
        if _same_cgroup(kill, best):
            why.append(f"in the same cgroup {kill['memcg']}")
        out.append({"kill": kill, "kernel": best, "certainty": "likely", "why": why})
    return out


def sentence(match: dict[str, Any], fallback_limit: int | None = None) -> str:
    """``big.ipynb's kernel was likely killed by the OOM killer at 20:01:50 holding ...``."""
    kill, k = match["kill"], match["kernel"]
    nb = k.get("notebook")
    who = (
        f"{os.path.basename(nb)}'s kernel" if nb else f"The kernel {k.get('kernel_id') or k['pid']}"
    )
    at = time.strftime("%H:%M:%S", time.localtime(kill["time"]))
    text = f"{who} was {match['certainty']} killed by the OOM killer at {at}"
    limit = (k.get("cgroup") or {}).get("limit_bytes") or fallback_limit
    if kill.get("rss_bytes"):
        text += f" holding {fmt.size(kill['rss_bytes'])}"
        if limit:
            text += f" of its {fmt.size(limit)} limit"
    return text + " (" + "; ".join(match["why"]) + ")"
