"""Rules on memory: the OOM killer's record, use against the limit, pressure, pids."""

import time

from wizard.base import fmt
from wizard.base.thresholds import HIGH_USE, NEAR_LIMIT, PIDS_NEAR_LIMIT, PRESSURE_SOME_AVG10
from wizard.diagnosis import victim
from wizard.diagnosis.common import (
    PROBLEM,
    WARNING,
    banner_cause,
    halt_commands,
    kernels_of,
    kill_line,
    recent_kills,
    run_outside,
)


def oom_kills(facts):
    mem = facts.get("memory") or {}
    count = mem.get("oom_kills")
    scope = "in this container (cgroup)"
    if count is None and not mem.get("cgroup"):
        count, scope = mem.get("host_oom_kills"), "on this machine since it started"
    recent = recent_kills(mem, facts.get("now", time.time()))
    found = victim.matches(facts)
    if not count and not recent and not found:
        return None
    evidence = [kill_line(e) for e in recent[-5:]]
    evidence += [
        "elsewhere on this machine (not this cgroup): " + kill_line(e)
        for e in (mem.get("oom_log_elsewhere") or [])[-3:]
    ]
    groups = mem.get("oom_group_kills") or 0
    distinct = len({e.get("pid") for e in mem.get("oom_log") or []})
    if count and groups and distinct and distinct <= count:
        # The kernel counts a group kill's first victim twice: the log's pids do not.
        plural = "es" if distinct != 1 else ""
        message = (
            f"The out-of-memory killer has ended {distinct} process{plural} {scope}, "
            f"{groups} group kill(s) among them (memory.events counts {count})."
        )
    elif count:
        plural = "es" if count != 1 else ""
        message = f"The out-of-memory killer has ended {count} process{plural} {scope}."
        if groups:
            message += f" {groups} of them were group kill(s) (memory.oom.group)."
    elif recent:
        message = f"The kernel log shows {len(recent)} out-of-memory kill(s) in the last day."
    else:
        message = "The kernel log shows a kill in a kernel's own cgroup."
    if recent:
        message += " Last: " + kill_line(recent[-1]) + "."
    if found:
        own_limit = mem.get("limit_bytes") if mem.get("limit_source") != "host" else None
        message = victim.sentence(found[-1], own_limit) + ". " + message
    if mem.get("oom_group"):
        message += (
            " memory.oom.group is set: one out-of-memory kill ends every process in the "
            "cgroup (on Kubernetes 1.28+ that is the whole user server, so the page then "
            "says the server is not running)."
        )
    hint = (
        "Memory ran out: halt the notebooks you are not using, or make the calculation "
        "smaller, then restart the kernel."
    )
    return {
        "message": message,
        "hint": hint,
        "commands": halt_commands(kernels_of(facts)),
        "evidence": evidence,
    }


def memory_near_limit(facts):
    mem = facts.get("memory") or {}
    used, limit = mem.get("used_bytes"), mem.get("limit_bytes")
    share = fmt.percent(used, limit)
    if share is None or share < HIGH_USE * 100:
        return None
    return {
        "severity": PROBLEM if share >= NEAR_LIMIT * 100 else WARNING,
        "message": f"{fmt.size(used)} of {fmt.size(limit)} in use ({share:.0f}%, limit from "
        f"{mem.get('limit_source') or 'unknown'}).",
        "hint": "A kernel that asks for more memory now will be killed: free memory before "
        "running it again.",
        "commands": halt_commands(kernels_of(facts)) or ["top -o %MEM"],
    }


def memory_pressure(facts):
    psi = (facts.get("memory") or {}).get("pressure") or {}
    some = psi.get("some_avg10")
    if some is None or some < PRESSURE_SOME_AVG10:
        return None
    return {
        "message": f"Processes waited for memory {some:.0f}% of the last 10 seconds "
        "(memory pressure): the system is reclaiming memory hard.",
        "hint": "Expect slowness, then kills: free memory now.",
    }


def earlyoom_sigterm(facts):
    """Whether earlyoom sent SIGTERM in the last day to a process that may be ours."""
    u = (facts.get("memory") or {}).get("userspace_oom") or {}
    now = facts.get("now", time.time())
    return any(
        k.get("killer") == "earlyoom"
        and k.get("signal") == "SIGTERM"
        and k.get("ours") is not False
        and (not k.get("time") or now - k["time"] <= 86400)
        for k in u.get("kills") or []
    )


def userspace_oom_kill(facts):
    u = (facts.get("memory") or {}).get("userspace_oom") or {}
    now = facts.get("now", time.time())
    kills = [
        k
        for k in u.get("kills") or []
        if k.get("ours") is not False and (not k.get("time") or now - k["time"] <= 86400)
    ]
    marks = u.get("xattr_kills") or {}
    if not kills and not marks:
        return None
    lines = []
    for k in kills:
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(k["time"]))
            if k.get("time")
            else "at an unknown time"
        )
        if k["killer"] == "systemd-oomd":
            lines.append(
                f"systemd-oomd killed every process of {k['cgroup']} {when} ({k['reason']})"
            )
        else:
            who = f"{k['name']} (pid {k['pid']}, uid {k['uid']})"
            lines.append(f"earlyoom sent {k['signal']} to {who} {when}")
    for d, n in marks.items():
        lines.append(f"systemd-oomd marked {d} with user.oomd_kill={n} (its kill count there)")
    proven = any(k.get("ours") for k in kills) or bool(marks)
    message = "A userspace OOM killer ended processes here: " + lines[-1] + "."
    if not proven:
        message = (
            "A userspace OOM killer ended a process of this user (possibly a kernel; earlyoom "
            "watches the whole machine, not this cgroup): " + lines[-1] + "."
        )
    if any(k["killer"] == "earlyoom" and k["signal"] == "SIGTERM" for k in kills):
        message += " A kernel that ended on that SIGTERM did not shut down cleanly."
    return {
        "severity": PROBLEM if proven else WARNING,
        "message": message,
        "hint": "The machine ran low on memory and a userspace killer (not the kernel) acted, "
        "so the kernel log shows no kill: use less memory, or halt kernels you do not use.",
        "commands": halt_commands(kernels_of(facts)),
        "evidence": lines[-5:],
    }


def memory_throttled(facts):
    mem = facts.get("memory") or {}
    high, hits = mem.get("high_bytes"), mem.get("high_events")
    if high is None or not hits:
        return None
    message = (
        f"memory.high is {fmt.size(high)} (set at {mem.get('high_path') or '?'}): the kernel "
        f"throttled this cgroup {hits} time(s) above it, reclaiming instead of killing."
    )
    some = ((mem.get("pressure") or {}).get("some_avg10")) or 0
    if some:
        message += f" Processes waited for memory {some:.0f}% of the last 10 seconds."
    limit_note = "" if mem.get("limit_source") == "host" else " (memory.max is the kill limit)"
    return {
        "message": message,
        "hint": "Above memory.high work slows down sharply but is not killed"
        + limit_note
        + ": use less memory, or ask for a higher memory.high.",
        "commands": halt_commands(kernels_of(facts)),
    }


def _pids_cases(facts):
    """``(where, current, max, refused)`` of our own cgroup's pids limit and of each
    kernel's own cgroup (seen from outside it too), one per cgroup."""
    pids = (facts.get("memory") or {}).get("pids") or {}
    own = ((facts.get("memory") or {}).get("cgroup") or {}).get("path")
    cases, seen = [], {own}
    if pids.get("max") is not None or pids.get("events_max"):
        cases.append((None, pids.get("current"), pids.get("max"), pids.get("events_max")))
    for k in kernels_of(facts):
        cg = k.get("cgroup") or {}
        if cg.get("path") in seen or (cg.get("pids_max") is None and not cg.get("pids_refused")):
            continue
        seen.add(cg.get("path"))
        name = k.get("notebook") or k.get("kernel_id") or f"pid {k.get('pid')}"
        where = f"the kernel of {name} (cgroup {cg.get('path')})"
        cases.append((where, cg.get("pids_current"), cg.get("pids_max"), cg.get("pids_refused")))
    return cases


def pids_near_limit(facts):
    parts = []
    for where, cur, mx, hits in _pids_cases(facts):
        share = fmt.percent(cur, mx)
        if not hits and (share is None or share < PIDS_NEAR_LIMIT * 100):
            continue
        text = f"{cur} processes of {mx} allowed" + (f" in {where}" if where else "") + "."
        if hits:
            text += f" The limit has refused to start a process {hits} time(s)."
        parts.append(text)
    if not parts:
        return None
    return {
        "message": " ".join(parts),
        "hint": "Something forks too many processes (a multiprocessing pool, a thread per item): "
        "limit the workers, and halt kernels you do not use.",
        "commands": ["ps -eLf | wc -l"],
    }


def no_memory_evidence(facts):
    if facts.get("intentional") or banner_cause(facts) in ("native", "cannot-start", "stopped"):
        return None
    if facts.get("_memory_evidence") is not False:
        return None  # memory evidence fired, or a memory rule failed: nothing to deny
    return {
        "message": "No sign of memory trouble: no out-of-memory kill recorded and memory is "
        "not near its limit.",
        "hint": "Rule out Jupyter: run the code in a terminal, then in a plain Jupyter server.",
        "commands": [run_outside(facts)],
    }
