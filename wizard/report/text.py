"""The report for people: one line per check, the ranked verdict, a closing count.

Presentation only: the facts come from the probes, the verdict from the rules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable

from wizard.base import fmt
from wizard.base.failure import line
from wizard.base.invocation import command
from wizard.diagnosis import checks
from wizard.diagnosis.common import kill_line
from wizard.diagnosis.deathtext import describe
from wizard.diagnosis.rules_kernels import spec_problem
from wizard.report.printer import MARKS_UNICODE, Printer, table
from wizard.report.sparkline import sparkline

if TYPE_CHECKING:
    from wizard.base.shapes import Death, Facts, Failure, Finding, KernelCgroup
    from wizard.report.context import Context

MAX_KERNELS_SHOWN = 8


def check_status(check_id: str, findings: Sequence[Finding], facts: Facts) -> str:
    sev = [f["severity"] for f in findings if f["check"] == check_id]
    for s in ("problem", "warning", "info"):
        if s in sev:
            return s
    if check_id in _failed_checks(facts):
        return "error"
    return "ok"


def _failed_checks(facts: Facts) -> set[str]:
    return {e["check"] for e in facts.get("errors") or []}


# -- one summary line per check ----------------------------------------------


def summary_banner(facts: Facts) -> str:
    b = facts.get("banner")
    if facts.get("intentional"):
        return "you stopped or restarted the kernel yourself"
    if not b:
        return "not given (use --banner TEXT)"
    if b["kind"] == "signal":
        row: Any = b["row"]
        return f"{b['signal']}: {row['meaning'].split('.')[0].lower()}"
    if b["kind"] == "exit":
        return f"exit code {b['code']}: the kernel ended by itself"
    return "the kernel died; the message names no cause"


def summary_memory(facts: Facts) -> str:
    m = facts.get("memory") or {}
    used, limit = m.get("used_bytes"), m.get("limit_bytes")
    if limit is None:
        return "could not read the memory limit"
    share = fmt.percent(used, limit)
    text = f"{fmt.size(used)} of {fmt.size(limit)} used"
    if m.get("kernel_cgroups"):
        text = "the wizard's cgroup: " + text
    if share is not None:
        text += f" ({share:.0f}%)"
    text += f", limit from {m.get('limit_source') or 'unknown'}"
    if m.get("swap_total_bytes"):
        text += f"; swap {fmt.size(m.get('swap_used_bytes'))} of {fmt.size(m['swap_total_bytes'])}"
    if (m.get("cgroup") or {}).get("namespace") == "own":
        text += "; in a cgroup namespace (-v says what it hides)"
    if m.get("high_bytes") is not None:
        text += f"; memory.high {fmt.size(m['high_bytes'])} (throttles, never kills)"
    for kc in m.get("kernel_cgroups") or []:
        kc_limit = fmt.size(kc["limit_bytes"]) if kc.get("limit_bytes") else "no limit"
        text += f"; kernels' cgroup {kc['path']}: {fmt.size(kc.get('usage_bytes'))} of {kc_limit}"
    return text


def summary_oom(facts: Facts) -> str:
    m = facts.get("memory") or {}
    n = m.get("oom_kills")
    where = "in this cgroup"
    if n is None and not m.get("cgroup"):
        n, where = m.get("host_oom_kills"), "on this machine"
    text = f"{n} kill(s) {where}" if n is not None else "no kill count available"
    status = m.get("oom_log_status") or ""
    if status.startswith("unreadable"):
        text += f"; kernel log {status}"
    elif m.get("oom_log"):
        text += f"; kernel log: {len(m['oom_log'])} recent kill(s)"
    if status.startswith("cut"):
        text += "; kernel log read only in part (the newest records may be missing)"
    if m.get("oom_log_elsewhere"):
        text += f"; {len(m['oom_log_elsewhere'])} elsewhere on this machine"
    return text


def summary_processes(facts: Facts) -> str:
    p = (facts.get("memory") or {}).get("pids")
    if not p or p.get("max") is None:
        kernel: list[KernelCgroup] = []
        for k in (facts.get("kernels") or {}).get("kernels") or []:
            own = k.get("cgroup")
            if own is not None and own.get("pids_max") is not None:
                kernel.append(own)
        if kernel:  # none here, but a kernel's own cgroup has one
            cg = max(kernel, key=lambda c: (c.get("pids_refused") or 0, c.get("pids_current") or 0))
            refused = f", {cg['pids_refused']} refused" if cg.get("pids_refused") else ""
            return (
                f"no pids limit here; a kernel's cgroup {cg.get('path')}: "
                f"{cg.get('pids_current')} of {cg['pids_max']} processes allowed{refused}"
            )
        return "no pids limit here" if p is not None or facts.get("memory") else "not checked"
    return f"{p.get('current')} of {p['max']} processes allowed"


def summary_kernels(facts: Facts) -> str:
    ks = (facts.get("kernels") or {}).get("kernels") or []
    if not ks:
        return "no kernel running"
    held = sum(k.get("rss_bytes") or 0 for k in ks)
    return f"{len(ks)} running, {fmt.size(held)} in all"


def summary_servers(facts: Facts) -> str:
    s = facts.get("servers") or {}
    servers = s.get("servers") or []
    alive = [x for x in servers if x.get("alive")]
    fb: Mapping[str, Any] = s.get("fallback") or {}
    parts = []
    if alive:
        up = sum(1 for x in alive if x.get("reachable") and not x.get("error"))
        parts.append(f"{len(alive)} running, {up} answering")
        refusing = sum(1 for x in alive if x.get("reachable") and x.get("error"))
        if refusing:
            parts.append(f"{refusing} refusing requests")
    elif s.get("unlisted"):
        parts.append(f"not known: the runtime dir is unreadable ({s['unlisted']})")
    else:
        parts.append("none running")
    stale = len(servers) - len(alive)
    if stale:
        parts.append(f"{stale} stale file(s)")
    if fb.get("cocalc"):
        parts.append("plain server: CoCalc Project Settings")
    elif fb.get("command"):
        parts.append(f"plain server: {fb['command']}")
    else:
        parts.append("no Jupyter server installed in this Python")
    return "; ".join(parts)


def summary_kernelspecs(facts: Facts) -> str:
    specs = (facts.get("kernelspecs") or {}).get("kernelspecs") or []
    if not specs:
        return "none found"
    bad = [s for s in specs if not s.get("ok") or (s.get("deep") or {}).get("ok") is False]
    deep = any(s.get("deep") for s in specs)
    text = f"{len(specs)} installed"
    if bad:
        named = "; ".join(f"{s['name']} ({spec_problem(s)})" for s in bad)
        return text + f", {len(bad)} broken: {named}"
    return text + (", all start" if deep else ", interpreters found")


def _lead_death(facts: Facts) -> Death | None:
    """The death the verdict leads with: the newest crash, else the newest stop."""
    from wizard.diagnosis.common import last_crash

    deaths = facts.get("deaths") or []
    return last_crash(facts) or (deaths[0] if deaths else None)


def death_lines(p: Printer, facts: Facts) -> Iterator[str]:
    """The memory of the last recorded death as a sparkline, under its check line."""

    d = _lead_death(facts)
    if d and len(d.get("samples") or []) > 1:
        samples = d["samples"]
        spark = sparkline(samples, unicode=p.marks is MARKS_UNICODE)
        yield f"memory before it died: {spark} {fmt.size(samples[-1])}"


CAUSE_WORDS = {
    "oom-kill": "killed by the OOM killer",
    "signal": "killed by a signal",
    "exit": "exited",
    "shutdown": "shut down",
    "unknown": "ended, cause unknown",
}


def cause_counts(counts: Mapping[str, int]) -> str:
    """``{cause: n}`` as words, the most frequent first: "3 killed by a signal, 1 shut down"."""
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {CAUSE_WORDS.get(cause, cause)}" for cause, n in order)


def summary_deaths(facts: Facts) -> str:

    deaths = facts.get("deaths") or []
    rec: Mapping[str, Any] = facts.get("recorder") or {}
    if deaths:
        d = _lead_death(facts)
        assert d is not None  # there are deaths
        counts = facts.get("death_counts") or {}
        if not counts:
            for x in deaths:
                counts[x["cause"]] = counts.get(x["cause"], 0) + 1
        more = f" (in the last day: {cause_counts(counts)})" if sum(counts.values()) > 1 else ""
        return describe(d, facts.get("now")) + more
    if rec.get("running"):
        return "none in the last day; the recorder is running"
    return f"none recorded; start the recorder before the next crash: {command('watch')}"


SUMMARIES: dict[str, Callable[[Facts], str]] = {
    "banner": summary_banner,
    "deaths": summary_deaths,
    "memory": summary_memory,
    "oom": summary_oom,
    "processes": summary_processes,
    "kernels": summary_kernels,
    "servers": summary_servers,
    "kernelspecs": summary_kernelspecs,
}


def kernel_rows(facts: Facts, limit_bytes: int | None, now: float) -> list[list[str]]:
    rows: list[list[str]] = []
    for k in (facts.get("kernels") or {}).get("kernels") or []:
        cg = k.get("cgroup")
        own = cg.get("limit_bytes") if cg else None  # the kernel's own cgroup's limit
        share = fmt.percent(k.get("rss_bytes"), own if own is not None else limit_bytes)
        started = k.get("started")
        age = fmt.duration(now - started) if started else "?"
        state = k.get("execution_state") or ""
        if k.get("idle_seconds") is not None and state != "busy":
            state = f"idle {fmt.duration(k['idle_seconds'])}"
        rows.append(
            [
                str(k.get("pid")),
                fmt.size(k.get("rss_bytes")),
                f"{share:.0f}%" if share is not None else "",
                age,
                state,
                k.get("kernel_name") or "?",
                k.get("notebook") or "(notebook unknown)",
            ]
        )
    return rows


def write(ctx: Context, facts: Facts, findings: Sequence[Finding], verbose: bool = False) -> None:
    from wizard import __version__

    p = Printer(ctx)
    p.line(p.bold(f"Kernel wizard {__version__}: why did the kernel die?"))
    p.line()
    write_checks(p, facts, findings, verbose)
    p.line()
    if findings:
        p.line(p.bold("What to do"))
        write_findings(p, findings, verbose)
    write_errors(p, facts)
    if verbose and facts.get("versions"):
        p.line()
        p.line("Versions (for a bug report): " + versions_line(facts["versions"]))
    p.line()
    p.line(closing_line(findings, facts.get("errors") or ()))


def versions_line(versions: Mapping[str, str | None]) -> str:
    """``wizard 0.1.0, CPython 3.11.7, Linux 6.1 x86_64, jupyter_server 2.14.2, ...``."""
    shown = [f"wizard {versions.get('wizard')}", versions.get("python"), versions.get("platform")]
    for name, value in versions.items():
        if name not in ("wizard", "python", "platform", "executable"):
            shown.append(f"{name} {value or 'not installed'}")
    return ", ".join(s for s in shown if s)


def write_checks(
    p: Printer,
    facts: Facts,
    findings: Sequence[Finding],
    verbose: bool,
    only: Collection[str] | None = None,
) -> None:
    now = facts.get("now") or 0
    mem = facts.get("memory") or {}
    for check in checks.CHECKS:
        if only is not None and check["id"] not in only:
            continue
        status = check_status(check["id"], findings, facts)
        try:
            summary = SUMMARIES[check["id"]](facts)
        except Exception as exc:  # facts of a shape no probe should give: say so, go on
            summary, status = f"cannot be shown ({type(exc).__name__})", "error"
        p.line(f"{p.mark(status)} {check['title']}: {summary}")
        if check["id"] == "deaths":
            for line in death_lines(p, facts):
                p.line("      " + line)
        if check["id"] == "kernels":
            rows = kernel_rows(facts, mem.get("limit_bytes"), now)
            shown = rows if verbose else rows[:MAX_KERNELS_SHOWN]
            if shown:
                table(p, ["PID", "MEMORY", "LIMIT", "AGE", "STATE", "KERNEL", "NOTEBOOK"], shown)
            if len(rows) > len(shown):
                p.line(f"      ... and {len(rows) - len(shown)} more (-v lists all)")
        if verbose:
            for line in _details(check["id"], facts):
                p.line("      " + line)


def write_findings(p: Printer, findings: Sequence[Finding], verbose: bool, start: int = 1) -> None:
    for n, f in enumerate(findings, start):
        p.line(f"  {n}. {p.mark(f['severity'])} {f['message']}")
        p.line(f"     {f['hint']}")
        for cmd in f["commands"]:
            p.line(f"       $ {cmd}")
        if verbose:
            for ev in f["evidence"]:
                p.line(f"       - {ev}")
        p.line(f"     Read: {f['url']}")
        if f.get("signal_url"):
            # the banner's own words were given only for the banner's findings
            label = "The message" if f.get("check") == "banner" else "The signal"
            p.line(f"     {label}: {f['signal_url']}")
        p.line(f"     ({f['id']})")


def write_errors(p: Printer, facts: Facts) -> None:
    errors = facts.get("errors") or []
    if errors:
        p.line()
        p.line(p.bold("Checks that could not complete"))
        for e in errors:
            p.line(f"  {p.mark('error')} {line(e)}")


def closing_line(findings: Sequence[Finding], errors: Sequence[Failure] = ()) -> str:
    problems = sum(1 for f in findings if f["severity"] == "problem")
    warnings = sum(1 for f in findings if f["severity"] == "warning")
    if not problems and not warnings:
        text = "No problem found."
    else:
        text = f"{problems} problem(s), {warnings} warning(s) found."
    if errors:
        text += f" {len(errors)} check(s) incomplete."
    if findings and not (problems or warnings):
        text += " See the notes above."
    return text


def _details(check_id: str, facts: Facts) -> Iterator[str]:
    mem = facts.get("memory") or {}
    if check_id == "memory":
        cg = mem.get("cgroup") or {}
        yield f"host: {fmt.size(mem.get('host_available_bytes'))} available of " + fmt.size(
            mem.get("host_total_bytes")
        )
        if cg:
            where = f"cgroup v{cg.get('version')} {cg.get('path')}"
            if cg.get("limit_bytes") is None:
                yield f"{where}: no memory limit set on it or its ancestors"
            else:
                yield f"{where}: limit {fmt.size(cg['limit_bytes'])} set at {cg.get('limit_path')}"
        if mem.get("high_bytes") is not None:
            yield (
                f"memory.high: {fmt.size(mem['high_bytes'])} set at {mem.get('high_path')}"
                f" (throttled above it {mem.get('high_events') or 0} time(s), no kill)"
            )
        if mem.get("oom_group"):
            yield "memory.oom.group: 1 (one out-of-memory kill ends every process in the cgroup)"
        for kc in mem.get("kernel_cgroups") or []:
            limit = fmt.size(kc["limit_bytes"]) if kc.get("limit_bytes") else "no limit"
            yield (
                f"kernels {', '.join(map(str, kc['pids']))} run in cgroup {kc['path']}, not the "
                f"wizard's: {fmt.size(kc.get('usage_bytes'))} used, {limit}"
                + (f" (set at {kc['limit_path']})" if kc.get("limit_bytes") else "")
                + f", {kc.get('oom_kills') or 0} OOM kill(s)"
            )
        for note in mem.get("notes") or []:
            yield "note: " + note
        if mem.get("peak_bytes"):
            yield f"peak: {fmt.size(mem['peak_bytes'])}"
        psi = mem.get("pressure")
        if psi:
            yield (
                f"pressure: some {psi.get('some_avg10')}% (10 s), {psi.get('some_avg60')}% (60 s);"
                f" full {psi.get('full_avg10')}% (10 s)"
            )
    elif check_id == "oom":
        for e in mem.get("oom_log") or []:
            yield kill_line(e)
        for e in mem.get("oom_log_elsewhere") or []:
            yield "elsewhere on this machine: " + kill_line(e)
        if (mem.get("oom_log_status") or "").startswith("cut"):
            yield "kernel log " + mem["oom_log_status"]
    elif check_id == "servers":
        for s in (facts.get("servers") or {}).get("servers") or []:
            state = "answering" if s.get("reachable") else ("alive" if s.get("alive") else "stale")
            extra = f" ({s['error']})" if s.get("error") else ""
            yield f"pid {s.get('pid')} {s.get('url')}: {state}{extra}"
    elif check_id == "kernelspecs":
        for s in (facts.get("kernelspecs") or {}).get("kernelspecs") or []:
            status = "ok" if s.get("ok") else s.get("problem")
            yield f"{s['name']}: {s.get('argv0_path') or s.get('argv0')} ({status})"
    elif check_id == "kernels":
        k = facts.get("kernels") or {}
        if k.get("denied") or k.get("vanished"):
            yield (
                f"{k.get('scanned', 0)} processes scanned; {k.get('denied', 0)} not readable, "
                f"{k.get('vanished', 0)} vanished during the scan"
            )
