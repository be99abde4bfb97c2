"""Rules turn the probes' data into findings. The RULES table is the only list.

The site's wizard page renders CHECKS and RULES (``.. wizard-checks::`` and
``.. wizard-findings::``), so what the page promises is what the code does.

Each rule's ``test(facts)`` returns None, or a dict with ``message`` (one line:
what was found), ``hint`` (one line: what to do) and optionally ``commands``
(shell commands that fix it) and ``evidence`` (lines shown with ``-v``).
``facts`` holds the probes' results under "memory", "kernels", "servers",
"kernelspecs", plus "banner" (``banner.parse`` or None) and "intentional"
(True when the user said they stopped the kernel themselves, else None).
"""

import time

from wizard.base import fmt

PROBLEM, WARNING, INFO = "problem", "warning", "info"
SEVERITY_ORDER = {PROBLEM: 0, WARNING: 1, INFO: 2}

# Thresholds, in one place.
NEAR_LIMIT = 0.90  # share of the memory limit in use that is a problem
HIGH_USE = 0.75  # ... and a warning
PIDS_NEAR_LIMIT = 0.80
IDLE_SECONDS = 15 * 60  # a kernel idle this long with memory is worth halting
IDLE_MIN_BYTES = 100 << 20  # ... when it holds at least this much
MANY_KERNELS = 5
PRESSURE_SOME_AVG10 = 20.0  # % of time tasks waited for memory in the last 10 s
# The site's step 1 (eliminate Jupyter) as one command; the user names the notebook.
RUN_OUTSIDE = "python -m wizard run YOUR_NOTEBOOK.ipynb"
RECENT_OOM_SECONDS = 24 * 3600  # kernel-log kills newer than this are "recent"
RECENT_DEATH_SECONDS = 24 * 3600  # deaths the recorder saw in this window lead the verdict

CHECKS = [
    {
        "id": "banner",
        "title": "What the message said",
        "what": "The banner's wording (asked, or given with --banner): a signal name, an exit "
        "code, or only that the kernel died. It decides which evidence is looked at first.",
    },
    {
        "id": "deaths",
        "title": "Recorded deaths",
        "what": "The kernels the recorder (python -m wizard watch, or the server extension) saw "
        "die in the last day: when, which notebook, the memory each held against the limit, "
        "and the cause: oom-kill, shutdown, signal, exit or unknown.",
    },
    {
        "id": "memory",
        "title": "Memory",
        "what": "The memory limit that really applies: the smallest limit of this process's "
        "cgroup and its ancestors (v1 and v2), else the machine's memory. Used, available, "
        "peak, swap and memory pressure where the system reports them.",
    },
    {
        "id": "oom",
        "title": "Out-of-memory kills",
        "what": "The cgroup's count of processes the OOM killer ended, the machine's count, "
        "and, where the kernel log can be read, which processes it killed, when and how big "
        "they were.",
    },
    {
        "id": "processes",
        "title": "Processes",
        "what": "The number of processes against the cgroup's pids limit: a kernel that "
        "forks too many processes is stopped there.",
    },
    {
        "id": "kernels",
        "title": "Open kernels",
        "what": "Every kernel process you run, found by the connection file on its command "
        "line, with or without a Jupyter server: its memory (children included), share of "
        "the limit, age, the notebook it belongs to, and its state where a server knows it.",
    },
    {
        "id": "servers",
        "title": "Jupyter servers",
        "what": "The servers listed in Jupyter's runtime directory: alive or stale, answering "
        "or not (only servers on this machine are asked), and whether a plain Jupyter server "
        "can be started here to rule out the usual interface.",
    },
    {
        "id": "kernelspecs",
        "title": "Kernelspecs",
        "what": "The installed kernelspecs in every Jupyter data directory: whether each one's "
        "interpreter exists and, with --deep, whether it really starts.",
    },
]


def _limit(facts):
    mem = facts.get("memory") or {}
    return mem.get("limit_bytes")


def _kernels(facts):
    return (facts.get("kernels") or {}).get("kernels") or []


def _banner_cause(facts):
    b = facts.get("banner")
    return b["row"]["cause"] if b and b.get("row") else None


def _halt_commands(kernels, idle_first=True):
    """Commands that free memory: the idle kernels, then the biggest ones by name."""
    cmds = []
    if kernels and idle_first:
        cmds.append(f"python -m wizard halt --idle {IDLE_SECONDS // 60}m")
    for k in kernels[:2]:
        if k.get("execution_state") == "busy":
            continue  # running code: the user may be waiting for it
        target = k.get("notebook") or k.get("kernel_id") or str(k["pid"])
        cmds.append(f"python -m wizard halt {_quote(target)}")
    return cmds


def _quote(s):
    import shlex

    return shlex.quote(str(s))


def _kill_line(entry):
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["time"]))
        if entry.get("time")
        else "at an unknown time"
    )
    size = f", {fmt.size(entry['rss_bytes'])} resident" if entry.get("rss_bytes") else ""
    where = f" in cgroup {entry['memcg']}" if entry.get("memcg") else ""
    return f"killed {entry.get('name') or '?'} (pid {entry.get('pid')}) {when}{size}{where}"


def _recent_kills(mem, now):
    log = mem.get("oom_log") or []
    return [e for e in log if e.get("time") and now - e["time"] <= RECENT_OOM_SECONDS]


# -- the rules ----------------------------------------------------------------


def last_crash(facts):
    """The newest death the recorder saw that was not a stop on request, or None."""
    for d in facts.get("deaths") or []:
        if d.get("cause") != "shutdown":
            return d
    return None


def _death_finding(d, facts, hint, commands, anchor):
    from wizard.diagnosis import deathtext

    now = facts.get("now")
    evidence = []
    if d.get("detail"):
        evidence.append(f"how it is known: {d['detail']}")
    evidence += [deathtext.describe(x, now) for x in (facts.get("deaths") or []) if x is not d][:4]
    return {
        "message": deathtext.describe(d, now) + ".",
        "hint": hint,
        "commands": commands,
        "evidence": evidence,
        "signal_anchor": anchor,
    }


def recorded_oom(facts):
    d = last_crash(facts)
    if not d or not (d["cause"] == "oom-kill" or d.get("signal") == "SIGKILL"):
        return None
    hint = (
        "It ran out of memory: halt the notebooks you are not using, or make the calculation "
        "smaller, then run it again."
        if d["cause"] == "oom-kill"
        else "Killed outright, with no OOM kill counted: something stopped it by force (kill -9, "
        "a restart that timed out)."
    )
    cmds = [*_halt_commands(_kernels(facts)), "python -m wizard history"]
    return _death_finding(d, facts, hint, cmds, "signal-sigkill")


def recorded_native(facts):
    from wizard.diagnosis import signals

    d = last_crash(facts)
    row = signals.BY_NAME.get(d.get("signal")) if d and d["cause"] == "signal" else None
    if not row or row["cause"] != "native":
        return None
    hint = (
        "Native code in a library crashed, not Jupyter: run the same code outside Jupyter to "
        "see the crash, then upgrade or report that library."
    )
    return _death_finding(d, facts, hint, ["python -m wizard history"], row["anchor"])


def recorded_exit(facts):
    d = last_crash(facts)
    if not d or d["cause"] != "exit":
        return None
    hint = "It ended by itself: right after a start this usually means it could not start."
    return _death_finding(d, facts, hint, ["jupyter kernelspec list"], "exit-code")


def oom_kills(facts):
    mem = facts.get("memory") or {}
    count = mem.get("oom_kills")
    scope = "in this container (cgroup)"
    if count is None and not mem.get("cgroup"):
        count, scope = mem.get("host_oom_kills"), "on this machine since it started"
    recent = _recent_kills(mem, facts.get("now", time.time()))
    if not count and not recent:
        return None
    evidence = [_kill_line(e) for e in recent[-5:]]
    if count:
        plural = "es" if count != 1 else ""
        message = f"The out-of-memory killer has ended {count} process{plural} {scope}."
    else:
        message = f"The kernel log shows {len(recent)} out-of-memory kill(s) in the last day."
    if recent:
        message += " Last: " + _kill_line(recent[-1]) + "."
    hint = (
        "Memory ran out: halt the notebooks you are not using, or make the calculation "
        "smaller, then restart the kernel."
    )
    return {
        "message": message,
        "hint": hint,
        "commands": _halt_commands(_kernels(facts)),
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
        "commands": _halt_commands(_kernels(facts)) or ["top -o %MEM"],
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


def pids_near_limit(facts):
    pids = (facts.get("memory") or {}).get("pids") or {}
    cur, mx, hits = pids.get("current"), pids.get("max"), pids.get("events_max")
    share = fmt.percent(cur, mx)
    if not hits and (share is None or share < PIDS_NEAR_LIMIT * 100):
        return None
    message = f"{cur} processes of {mx} allowed."
    if hits:
        message += f" The limit has refused to start a process {hits} time(s)."
    return {
        "message": message,
        "hint": "Something forks too many processes (a multiprocessing pool, a thread per item): "
        "limit the workers, and halt kernels you do not use.",
        "commands": ["ps -eLf | wc -l"],
    }


def idle_kernels(facts):
    now = facts.get("now", time.time())
    idle = []
    for k in _kernels(facts):
        if k.get("execution_state") == "busy" or (k.get("rss_bytes") or 0) < IDLE_MIN_BYTES:
            continue
        quiet = k.get("idle_seconds")
        if quiet is None and k.get("started") and not k.get("execution_state"):
            quiet = now - k["started"]  # no server to ask: age is the best we have
        if quiet is not None and quiet >= IDLE_SECONDS:
            idle.append(k)
    if not idle:
        return None
    held = sum(k.get("rss_bytes") or 0 for k in idle)
    names = ", ".join(k.get("notebook") or f"pid {k['pid']}" for k in idle[:3])
    return {
        "message": f"{len(idle)} kernel(s) idle for over {fmt.duration(IDLE_SECONDS)} hold "
        f"{fmt.size(held)}: {names}{', ...' if len(idle) > 3 else ''}.",
        "hint": "Closing a tab does not stop a kernel: shut down the ones you are not using.",
        "commands": _halt_commands(idle, idle_first=False),
    }


def many_kernels(facts):
    ks = _kernels(facts)
    if len(ks) < MANY_KERNELS:
        return None
    held = sum(k.get("rss_bytes") or 0 for k in ks)
    return {
        "message": f"{len(ks)} kernels are running, holding {fmt.size(held)}.",
        "hint": "Each open notebook keeps its kernel and its memory until it is shut down.",
        "commands": _halt_commands(ks),
    }


def banner_sigkill(facts):
    b = facts.get("banner")
    if not b or b.get("signal") != "SIGKILL":
        return None
    return {
        "message": "The kernel was killed with SIGKILL: most often the out-of-memory killer.",
        "hint": "Check the memory evidence above; if there is none, something stopped the "
        "kernel by force (a project stop, a restart that timed out).",
        "signal_anchor": b["row"]["anchor"],
    }


def banner_native(facts):
    b = facts.get("banner")
    if not b or _banner_cause(facts) != "native":
        return None
    return {
        "message": f"The kernel died of {b['signal']}: native code in a library crashed, "
        "not Jupyter.",
        "hint": "Run the same code outside Jupyter to see the crash itself, then upgrade or "
        "report the library whose code was running.",
        "commands": [RUN_OUTSIDE],
        "signal_anchor": b["row"]["anchor"],
    }


def banner_exit(facts):
    b = facts.get("banner")
    if not b or b.get("kind") != "exit":
        return None
    return {
        "message": f"The kernel exited with code {b['code']}: usually it could not start.",
        "hint": "Check the kernelspec below and the kernel's error output.",
        "commands": ["jupyter kernelspec list"],
        "signal_anchor": b["row"]["anchor"],
    }


def stopped_on_purpose(facts):
    b = facts.get("banner")
    if not facts.get("intentional") and not (b and b.get("signal") == "SIGTERM"):
        return None
    return {
        "message": "The kernel was stopped on purpose (a shutdown or restart): the message "
        "only confirms it.",
        "hint": "Nothing to fix. Start the kernel again when you need it.",
        "signal_anchor": b["row"]["anchor"] if b and b.get("row") else None,
    }


def _spec_problem(spec):
    return spec.get("problem") or (spec.get("deep") or {}).get("detail") or "cannot start"


def kernelspec_broken(facts):
    specs = (facts.get("kernelspecs") or {}).get("kernelspecs") or []
    bad = [s for s in specs if not s.get("ok") or (s.get("deep") or {}).get("ok") is False]
    if not bad:
        return None
    first = bad[0]
    problem = _spec_problem(first)
    return {
        "message": f"Kernelspec {first['name']!r}: {problem}"
        + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        + ".",
        "hint": "A kernel that cannot start dies at once: reinstall it, or remove the broken spec.",
        "commands": [
            "jupyter kernelspec list",
            "python -m ipykernel install --user",
        ],
        "evidence": [f"{s['name']}: {_spec_problem(s)}" for s in bad],
    }


def server_unreachable(facts):
    servers = (facts.get("servers") or {}).get("servers") or []
    bad = [s for s in servers if s.get("alive") and s.get("reachable") is False]
    if not bad:
        return None
    return {
        "message": f"A Jupyter server (pid {bad[0]['pid']}) is running but does not answer: "
        f"{bad[0].get('error') or 'no reply'}.",
        "hint": "A hung server cannot restart kernels: save what you can, then restart it.",
    }


def no_memory_evidence(facts):
    if facts.get("intentional") or _banner_cause(facts) in ("native", "cannot-start", "stopped"):
        return None
    if any(f["id"] in MEMORY_RULES for f in facts.get("_found", [])):
        return None
    return {
        "message": "No sign of memory trouble: no out-of-memory kill recorded and memory is "
        "not near its limit.",
        "hint": "Rule out Jupyter: run the code in a terminal, then in a plain Jupyter server.",
        "commands": [RUN_OUTSIDE],
    }


def plain_server(facts):
    if facts.get("intentional"):
        return None
    found = {f["id"] for f in facts.get("_found", [])}
    if "no-memory-evidence" not in found and "native-crash" not in found:
        return None
    fb = (facts.get("servers") or {}).get("fallback") or {}
    if fb.get("cocalc"):
        hint = "In CoCalc: Project Settings, then Plain Jupyter Server; open the notebook there."
    elif fb.get("command"):
        hint = "Start a plain Jupyter server and open the notebook there."
    else:
        hint = "No Jupyter server is installed in this Python: install one to compare."
    return {
        "message": "If the notebook works in a plain Jupyter server, the usual interface is "
        "at fault, not the code.",
        "hint": hint,
        "commands": [fb["command"]] if fb.get("command") and not fb.get("cocalc") else [],
    }


# Ranked: the first rule that fires leads the verdict (the banner can move a family
# to the front, see rank()). "cause" ties a rule to a family of the signals table.
RULES = [
    {
        "id": "recorded-oom-kill",
        "severity": PROBLEM,
        "check": "deaths",
        "cause": "memory",
        "when": "The recorder saw a kernel die in the last day, killed by the OOM killer (or by "
        "SIGKILL): its notebook, memory and limit lead the verdict.",
        "doc_label": "kernel-terminated-memory",
        "test": recorded_oom,
    },
    {
        "id": "recorded-native-crash",
        "severity": PROBLEM,
        "check": "deaths",
        "cause": "native",
        "when": "The recorder saw a kernel die in the last day of SIGSEGV, SIGABRT, SIGBUS or "
        "SIGILL.",
        "doc_label": "kernel-terminated-eliminate-jupyter",
        "test": recorded_native,
    },
    {
        "id": "recorded-exit",
        "severity": PROBLEM,
        "check": "deaths",
        "cause": "cannot-start",
        "when": "The recorder saw a kernel end by itself, with an exit code, in the last day.",
        "doc_label": "kernel-cannot-start",
        "test": recorded_exit,
    },
    {
        "id": "stopped-on-purpose",
        "severity": INFO,
        "check": "banner",
        "cause": "stopped",
        "when": "You said you restarted or shut down the kernel, or the message names SIGTERM.",
        "doc_label": "jupyter-kernel-terminated",
        "test": stopped_on_purpose,
    },
    {
        "id": "oom-kills-recorded",
        "severity": PROBLEM,
        "check": "oom",
        "cause": "memory",
        "when": "The OOM killer's count is above zero (the cgroup's, or the machine's where "
        "there is no cgroup), or the kernel log shows a kill in the last day.",
        "doc_label": "kernel-terminated-memory",
        "test": oom_kills,
    },
    {
        "id": "memory-near-limit",
        "severity": PROBLEM,
        "check": "memory",
        "cause": "memory",
        "when": f"{HIGH_USE:.0%} or more of the memory limit in force is used (a problem from "
        f"{NEAR_LIMIT:.0%}).",
        "doc_label": "low-memory",
        "test": memory_near_limit,
    },
    {
        "id": "memory-pressure",
        "severity": WARNING,
        "check": "memory",
        "cause": "memory",
        "when": f"Tasks waited for memory over {PRESSURE_SOME_AVG10:.0f}% of the last 10 "
        "seconds (pressure stall information).",
        "doc_label": "low-memory",
        "test": memory_pressure,
    },
    {
        "id": "killed-sigkill",
        "severity": PROBLEM,
        "check": "banner",
        "cause": "memory",
        "when": "The message names SIGKILL (or exit status 137).",
        "doc_label": "kernel-terminated-memory",
        "test": banner_sigkill,
    },
    {
        "id": "idle-kernels",
        "severity": WARNING,
        "check": "kernels",
        "cause": "memory",
        "when": f"Kernels that are not busy hold {fmt.size(IDLE_MIN_BYTES)} or more each and "
        f"have been idle for {fmt.duration(IDLE_SECONDS)} or more.",
        "doc_label": "jupyter-halt",
        "test": idle_kernels,
    },
    {
        "id": "many-kernels",
        "severity": WARNING,
        "check": "kernels",
        "cause": "memory",
        "when": f"{MANY_KERNELS} or more kernels are running.",
        "doc_label": "jupyter-halt",
        "test": many_kernels,
    },
    {
        "id": "pids-near-limit",
        "severity": PROBLEM,
        "check": "processes",
        "cause": "native",
        "when": f"{PIDS_NEAR_LIMIT:.0%} or more of the cgroup's pids limit is used, or the "
        "limit has refused a new process.",
        "doc_label": "too-many-processes",
        "test": pids_near_limit,
    },
    {
        "id": "native-crash",
        "severity": PROBLEM,
        "check": "banner",
        "cause": "native",
        "when": "The message names SIGSEGV, SIGABRT, SIGBUS or SIGILL.",
        "doc_label": "kernel-terminated-eliminate-jupyter",
        "test": banner_native,
    },
    {
        "id": "kernel-exit-code",
        "severity": PROBLEM,
        "check": "banner",
        "cause": "cannot-start",
        "when": "The message names an exit code that is not a signal's.",
        "doc_label": "kernel-cannot-start",
        "test": banner_exit,
    },
    {
        "id": "kernelspec-broken",
        "severity": PROBLEM,
        "check": "kernelspecs",
        "cause": "cannot-start",
        "when": "A kernelspec's interpreter is missing or not executable, its kernel.json is "
        "unreadable, or (with --deep) it does not start.",
        "doc_label": "kernel-cannot-start",
        "test": kernelspec_broken,
    },
    {
        "id": "server-unreachable",
        "severity": WARNING,
        "check": "servers",
        "cause": None,
        "when": "A Jupyter server's process is alive but its API does not answer.",
        "doc_label": "plain-jupyter-server",
        "test": server_unreachable,
    },
    {
        "id": "no-memory-evidence",
        "severity": INFO,
        "check": "memory",
        "cause": None,
        "when": "No memory finding fired and the message does not point elsewhere: the cause "
        "is likely something else.",
        "doc_label": "kernel-terminated-other",
        "test": no_memory_evidence,
    },
    {
        "id": "try-plain-server",
        "severity": INFO,
        "check": "servers",
        "cause": None,
        "when": "With no memory evidence, or after a native crash: how to open the notebook "
        "in a plain Jupyter server here.",
        "doc_label": "kernel-terminated-eliminate-ui",
        "test": plain_server,
    },
]

MEMORY_RULES = {r["id"] for r in RULES if r["cause"] == "memory" and r["check"] != "banner"}


def evaluate(facts, docs_base=None):
    """Run every rule in table order; return the findings, ranked."""
    from wizard.diagnosis.docs_map import url_for

    found = []
    facts = dict(facts)
    facts["_found"] = found
    for rule in RULES:
        try:
            hit = rule["test"](facts)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            # Data of a shape no probe should produce: say so, keep going.
            hit = None
            facts.setdefault("rule_errors", []).append(f"rule {rule['id']} failed: {exc!r}")
        if not hit:
            continue
        finding = {
            "id": rule["id"],
            "severity": hit.get("severity", rule["severity"]),
            "check": rule["check"],
            "message": hit["message"],
            "hint": hit["hint"],
            "commands": [c for c in hit.get("commands") or [] if c],
            "evidence": hit.get("evidence") or [],
            "doc_label": rule["doc_label"],
            "url": url_for(rule["doc_label"], docs_base),
            "cause": rule["cause"],
        }
        anchor = hit.get("signal_anchor")
        if anchor:
            finding["signal_label"] = anchor
            finding["signal_url"] = url_for(anchor, docs_base)
        found.append(finding)
    return rank(found, _banner_cause(facts))


def rank(findings, lead_cause=None):
    """Severity first; within it, the family the banner points to, then table order."""
    order = {r["id"]: i for i, r in enumerate(RULES)}

    def key(f):
        return (
            SEVERITY_ORDER[f["severity"]],
            0 if lead_cause and f["cause"] == lead_cause else 1,
            order[f["id"]],
        )

    return sorted(findings, key=key)
