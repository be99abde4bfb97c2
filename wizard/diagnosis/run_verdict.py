"""``wizard run``'s verdict: how the run ended, the memory evidence, and what it means.

Plain data in (the run's result and the memory probe before and after), plain data
out (the report ``--json`` prints and the text renders).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wizard.base import exitcodes
from wizard.base.invocation import command
from wizard.base.thresholds import NEAR_LIMIT

SCHEMA = "kernel-wizard-run/1"
# Output that native code prints when an allocation fails before it aborts.
ALLOC_FAILURE_TEXT = ("std::bad_alloc", "Cannot allocate memory", "out of memory")


# The runner's reason for a line it skipped because the Python has no IPython; its
# other notes (a GUI event loop, a GUI backend) are what a kernel would not do either.
NO_IPYTHON_REASON = "IPython is not installed"

# What wizard.engines.run_plan plans and wizard.engines.run_exec returns: plain dicts.
Plan = Mapping[str, Any]
RunResult = Mapping[str, Any]


def ipython_missing(skipped: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """The skipped lines that IPython would have run."""
    return [s for s in skipped or () if str(s.get("reason") or "").startswith(NO_IPYTHON_REASON)]


def runner_notes(skipped: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """The lines run differently from a kernel only because the run has no GUI."""
    missing = ipython_missing(skipped)
    return [s for s in skipped or () if s not in missing]


def memory_facts(
    plan: Plan, result: RunResult, before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    cg = result.get("cgroup") or {}
    limit, source = before.get("limit_bytes"), before.get("limit_source")
    set_limit = plan.get("memory_limit")
    if set_limit and (result.get("limit_mode") or "").startswith("cgroup"):
        if limit is None or set_limit <= limit:
            limit, source = set_limit, f"--memory-limit, child {result['limit_mode']}"
    elif set_limit:
        limit, source = set_limit, f"--memory-limit, {result.get('limit_mode')}"
    sampled = [b for b in (result.get("peak_rss_bytes"), result.get("maxrss_bytes")) if b]
    peak_rss = max(sampled) if sampled else None
    if cg.get("peak_bytes"):
        peak, peak_source = cg["peak_bytes"], f"child cgroup v{cg['version']}"
    else:
        peak, peak_source = peak_rss, "resident memory of the process tree"
    # Our own child cgroup counts exactly our kills. Without one, the counters of the
    # cgroup we are in (or of the whole machine) may include other processes' kills,
    # so the kernel log is asked whether it was our process that was killed.
    oom, where, known = 0, [], True
    if cg:
        oom = cg.get("oom_kills") or 0
        where = ["child cgroup"] if oom else []
        known = cg.get("oom_kills") is not None
    else:
        for key, name in (("oom_kills", "this cgroup"), ("host_oom_kills", "this machine")):
            a, b = before.get(key), after.get(key)
            if a is not None and b is not None:
                oom = max(b - a, 0)
                where = [name] if oom else []
                break
        else:
            known = False
        ours = [k for k in after.get("oom_log") or [] if k.get("pid") == result.get("pid")]
        if ours:
            oom, known = max(oom, len(ours)), True
            where.append(f"the kernel log names process {result.get('pid')}")
    return {
        "peak_bytes": peak,
        "peak_source": peak_source,
        "peak_rss_bytes": peak_rss,
        "limit_bytes": limit,
        "limit_source": source,
        "limit_mode": result.get("limit_mode"),
        "limit_note": result.get("limit_note"),
        "share": round(peak / limit, 4) if peak and limit else None,
        "oom_kills": oom if known else None,
        "oom_where": where,
        "cgroup": None
        if not cg
        else {k: cg.get(k) for k in ("version", "path", "limit_bytes", "failcnt", "removed")},
    }


def describe_signal(number: int) -> tuple[str | None, str, dict[str, Any] | None]:
    """Name, meaning and table row of a signal number."""
    import signal

    from wizard.diagnosis import signals

    row = signals.BY_NUMBER.get(number)
    if row:
        return row["name"], row["meaning"], row
    name = signals.signal_name(number)
    text = signal.strsignal(number) if hasattr(signal, "strsignal") else None
    return name, (text + "." if text else "An unusual signal."), None


def verdict(result: RunResult, mem: Mapping[str, Any], base: str | None) -> dict[str, Any]:
    """The verdict: kind, one-line summary, what to do, and the docs section that fits."""
    from wizard.diagnosis import docs_map

    outcome, cell = result["outcome"], result.get("cell")
    where = f" in cell {cell}" if cell is not None else ""
    near = mem["share"] is not None and mem["share"] >= NEAR_LIMIT
    oom = bool(mem["oom_kills"])
    exc = result.get("exception") or {}
    tail = result.get("output_tail") or ""
    signal_row = None
    if outcome == "finished":
        kind, label = "finished", "kernel-terminated-eliminate-ui"
        summary = "The code ran through outside Jupyter: on its own it neither crashes nor "
        summary += "runs out of memory here."
        todo = (
            "If the kernel still dies in Jupyter, memory held by other open kernels is the "
            f"next suspect ({command()}), then the notebook interface."
        )
        if near:
            todo = "The peak came close to the limit: with other kernels open it would not fit."
            label = "kernel-terminated-memory"
    elif outcome == "exception" and exc.get("type") == "MemoryError":
        kind, label = "memory", "kernel-terminated-memory"
        summary = f"Out of memory: MemoryError{where}."
        todo = "Use less memory in that cell, or run it where more memory is available."
    elif (
        outcome == "exception"
        and exc.get("type") == "EOFError"
        and "reading a line" in (exc.get("message") or "")
    ):
        kind, label = "exception", "kernel-terminated-eliminate-jupyter"
        summary = f"The notebook asks for input (input()){where}, and this run has no "
        summary += "terminal to answer it on: nothing is wrong with the code."
        todo = (
            "Run it from a terminal to type the answer there (as in the box Jupyter shows "
            "under the cell), or set the value in the cell instead of asking for it."
        )
    elif outcome == "exception":
        kind, label = "exception", "kernel-terminated-eliminate-jupyter"
        summary = f"A Python exception{where}: {exc.get('type')}. An exception does not kill "
        summary += "a kernel; the notebook fails outside Jupyter too."
        todo = "Fix the error shown above and run the notebook again."
    elif outcome == "signal":
        name, _, row = describe_signal(result["signal_number"])
        signal_row = row
        cause = row["cause"] if row else "native"
        alloc = any(t in tail for t in ALLOC_FAILURE_TEXT)
        if name == "SIGKILL" and (oom or near):
            kind, label = "memory", "kernel-terminated-memory"
            why = "the OOM killer's count rose" if oom else "the peak reached the limit"
            summary = f"Out of memory: killed by SIGKILL{where}; {why}."
            todo = "The code needs more memory than the limit allows: use less, or get more."
        elif name == "SIGKILL":
            kind, label = "killed", "kernel-terminated-memory"
            summary = f"Killed by SIGKILL{where}, with no sign of the OOM killer here: something "
            summary += "else killed it (kill -9, a stopped project), or the kill was not counted."
            todo = "Run it again; if it dies the same way, treat it as memory."
        elif cause == "native" and (alloc or (near and oom)):
            kind, label = "memory", "kernel-terminated-memory"
            summary = f"Out of memory in native code: {name}{where} after an allocation failed."
            todo = "The library crashed because memory ran out: use less, or get more."
        elif cause == "native":
            kind, label = "native", "kernel-terminated-eliminate-jupyter"
            summary = f"A crash in native code: {name}{where}. A library's compiled code "
            summary += "failed; it crashes outside Jupyter too, so Jupyter is not the cause."
            todo = (
                "Update or reinstall the library the stack points to; report the crash to it "
                "with this notebook's smallest failing cell."
            )
        else:  # SIGTERM and the like
            kind, label = "stopped", row["next"] if row else "kernel-terminated-other"
            summary = f"Stopped by {name}{where}: something asked the process to end."
            todo = "Nothing in the code itself; see what else on this machine stops processes."
    elif outcome == "exit":
        code = result.get("exit_status")
        kind, label = "exit", "kernel-terminated-eliminate-jupyter"
        if result.get("system_exit"):
            summary = f"The code raised SystemExit{where} (sys.exit or raise SystemExit) with "
            summary += f"exit status {code}: outside Jupyter that ends the script."
            todo = (
                "In Jupyter the kernel lives on: the cell shows SystemExit as an error and the "
                "cells after it do not run. Remove the call or guard it; only os._exit() ends "
                "the kernel itself."
            )
        else:
            summary = f"The code ended the process itself{where} with exit status {code} "
            summary += "(os._exit, or a library calling exit)."
            todo = "In Jupyter the same call ends the kernel; remove it or guard it."
    elif outcome == "timeout" and result.get("timeout_in_startup"):
        kind, label = "timeout", "kernel-terminated-eliminate-jupyter"
        summary = "The time limit came while Python was still starting, before the first "
        summary += "cell: stopped."
        todo = "Run again with a longer --timeout (starting Python and IPython takes a moment)."
    elif outcome == "timeout":
        kind, label = "timeout", "kernel-terminated-eliminate-jupyter"
        summary = f"Still running{where} at the time limit: stopped."
        todo = "Run again with a longer --timeout, or see where it was stuck above."
    elif outcome == "interrupted":
        kind, label = "interrupted", "kernel-terminated-eliminate-jupyter"
        summary = f"Interrupted{where}: the code and everything it started were stopped."
        todo = "Run it again when you have time to let it finish."
    else:  # not-started
        kind, label = "not-started", "kernel-cannot-start"
        summary = "The interpreter could not run the notebook's code at all"
        summary += f": {result.get('start_error')}." if result.get("start_error") else "."
        todo = "Check the interpreter (--python, or the notebook's kernelspec)."
    if ipython_missing(result.get("skipped")) and kind in ("exception", "exit"):
        todo += (
            " Lines with IPython syntax were skipped (no IPython in that Python): the error "
            "may come from them. Install IPython there, or pick another --python."
        )
    out = {
        "kind": kind,
        "summary": summary,
        "todo": todo,
        "label": label,
        "url": docs_map.url_for(label, base),
        "signal_url": docs_map.url_for(signal_row["anchor"], base) if signal_row else None,
        "see_also": [],
    }
    if kind == "memory":
        out["see_also"].append({"label": "low-memory", "url": docs_map.url_for("low-memory", base)})
    return out


def build_report(
    plan: Plan,
    result: RunResult,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    base: str | None,
) -> dict[str, Any]:
    from wizard import __version__

    mem = memory_facts(plan, result, before, after)
    v = verdict(result, mem, base)
    sig = None
    if result.get("signal_number") is not None:
        name, meaning, row = describe_signal(result["signal_number"])
        sig = {
            "name": name,
            "number": result["signal_number"],
            "meaning": meaning,
            "anchor": row["anchor"] if row else None,
        }
    code = exitcodes.PROBLEM
    if v["kind"] == "finished" or (v["kind"] == "exit" and result.get("exit_status") == 0):
        code = exitcodes.OK
    elif v["kind"] == "interrupted":
        code = exitcodes.INTERRUPTED
    fault = result.get("fault")
    cells_run = [c["n"] for c in result["cells"]]
    errors = [*result["errors"], *before.get("errors", [])]
    return {
        "schema": SCHEMA,
        "version": __version__,
        "notebook": plan["notebook"],
        "cwd": plan["cwd"],
        "python": plan["python"],
        "python_source": plan["python_source"],
        "python_version": result.get("python_version"),
        "cells_selected": plan["selected"],
        "cells_planned": [c["n"] for c in plan["cells"]],
        "cells_run": cells_run,
        "cells": result["cells"],
        "outcome": result["outcome"],
        "cell": result.get("cell"),
        "line": result.get("line"),
        "source_line": source_line(plan, result.get("cell"), result.get("line")),
        "exception": result.get("exception"),
        "signal": sig,
        "exit_status": result.get("exit_status"),
        "native_stack": None if not fault else fault["frames"],
        "extension_modules": None if not fault else fault.get("extension_modules"),
        "duration_seconds": result.get("duration_seconds"),
        "timeout_seconds": plan.get("timeout"),
        "memory": mem,
        "skipped": result["skipped"],
        "ipython": result.get("ipython"),
        "strays_stopped": result.get("strays"),
        "start_error": result.get("start_error"),
        "output_tail": result.get("output_tail") if result["outcome"] == "not-started" else None,
        "verdict": v,
        "docs_url": base,
        "errors": errors,
        "exit_code": code,
    }


def source_line(plan: Plan, n: int | None, line: int | None) -> str | None:
    if n is None or line is None:
        return None
    for c in plan["cells"]:
        if c["n"] == n:
            lines = c["source"].splitlines()
            return lines[line - 1].strip() if 0 < line <= len(lines) else None
    return None
