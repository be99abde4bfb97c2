"""What the rules share: reading the facts, and the commands that fix what they find."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wizard.base import fmt
from wizard.base.invocation import command
from wizard.base.thresholds import IDLE_SECONDS, RECENT_OOM_SECONDS
from wizard.diagnosis import idle

if TYPE_CHECKING:
    from wizard.base.shapes import Death, Facts, Kernel, Kill, Memory

PROBLEM, WARNING, INFO = "problem", "warning", "info"
SEVERITY_ORDER = {PROBLEM: 0, WARNING: 1, INFO: 2}


def last_crash(facts: Facts) -> Death | None:
    """The newest death the recorder saw that was not a stop on request, or None."""
    for d in facts.get("deaths") or []:
        if d.get("cause") != "shutdown":
            return d
    return None


def run_outside(facts: Facts) -> str:
    """The site's step 1 (eliminate Jupyter) as one command: the crashed notebook's, if known."""
    d = last_crash(facts)
    notebook = d.get("notebook") if d else None
    return command("run", quote(notebook) if notebook else "YOUR_NOTEBOOK.ipynb")


def limit_of(facts: Facts) -> int | None:
    mem = facts.get("memory")
    return mem.get("limit_bytes") if mem else None


def kernels_of(facts: Facts) -> list[Kernel]:
    result = facts.get("kernels")
    return (result.get("kernels") if result else None) or []


def banner_cause(facts: Mapping[str, Any]) -> str | None:
    b = facts.get("banner")
    return b["row"]["cause"] if b and b.get("row") else None


def halt_commands(kernels: Sequence[Kernel], idle_first: bool = True) -> list[str]:
    """Commands that free memory: the idle kernels, then the biggest ones by name."""
    cmds = []
    if idle_first and idle.worth_halting(kernels):
        cmds.append(command("halt", "--idle", f"{IDLE_SECONDS // 60}m"))
    for k in kernels[:2]:
        if k.get("execution_state") == "busy":
            continue  # running code: the user may be waiting for it
        target = k.get("notebook") or k.get("kernel_id") or str(k["pid"])
        cmds.append(command("halt", quote(target)))
    return cmds


def quote(s: object) -> str:
    import shlex

    return shlex.quote(str(s))


def kill_line(entry: Kill) -> str:
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["time"]))
        if entry.get("time")
        else "at an unknown time"
    )
    size = f", {fmt.size(entry['rss_bytes'])} resident" if entry.get("rss_bytes") else ""
    where = f" in cgroup {entry['memcg']}" if entry.get("memcg") else ""
    limit = entry.get("limit_memcg")
    if limit and limit != entry.get("memcg"):
        where += f" (the limit of cgroup {limit} was hit)"
    elif limit:
        where += " (its own limit was hit)"
    return f"killed {entry.get('name') or '?'} (pid {entry.get('pid')}) {when}{size}{where}"


def recent_kills(mem: Memory, now: float) -> list[Kill]:
    log = mem.get("oom_log") or []
    return [e for e in log if (t := e.get("time")) and now - t <= RECENT_OOM_SECONDS]
