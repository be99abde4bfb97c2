"""The halt command's screens: the plan, what is left running and why, and the results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wizard.base import fmt
from wizard.base.failure import line
from wizard.report.printer import table

if TYPE_CHECKING:
    from wizard.base.shapes import Failure
    from wizard.report.printer import Printer

# A kernel of the plan, one left running, one result: dicts of wizard.engines.halting.
Entry = Mapping[str, Any]


def idle_text(e: Entry) -> str:
    if e.get("execution_state") == "busy":
        return "busy"
    if e.get("idle_seconds") is not None:
        return fmt.duration(e["idle_seconds"])
    return "?" if e.get("server_pid") is None else "-"


def write_plan(p: Printer, entries: Sequence[Entry], title: str) -> None:
    can = [e for e in entries if not e["problem"]]
    total = sum(e.get("rss_bytes") or 0 for e in can)
    head = f"{title} {len(can)} kernel(s), holding {fmt.size(total)}"
    if len(can) < len(entries):
        head += f" ({len(entries) - len(can)} more cannot be halted)"
    p.line(p.bold(head + ":"))
    rows = [
        [
            str(e["pid"]),
            fmt.size(e.get("rss_bytes")),
            idle_text(e),
            {"server": "server", "signal": "signal"}[e["method"]] if not e["problem"] else "-",
            e["name"],
        ]
        for e in entries
    ]
    table(p, ["PID", "MEMORY", "IDLE", "HOW", "NOTEBOOK"], rows, indent="  ")
    for e in entries:
        if e["problem"]:
            p.line(f"  {p.mark('warning')} pid {e['pid']} cannot be halted: {e['problem']}")


def write_skipped(
    p: Printer, skipped: Sequence[Entry], errors: Sequence[Failure] = (), most: int = 4
) -> None:
    """What is left running and why; kernels of unknown idle time in one line."""
    unknown = [s for s in skipped if s.get("kind") == "unknown"]
    for s in skipped:
        if s.get("kind") != "unknown":
            p.line(f"  {p.mark('info')} left running: {s['name']} (pid {s['pid']}): {s['reason']}")
    if unknown:
        names = ", ".join(f"{s['name']} (pid {s['pid']})" for s in unknown[:most])
        if len(unknown) > most:
            names += f" and {len(unknown) - most} more"
        p.line(
            f"  {p.mark('info')} left running: {len(unknown)} kernel(s) whose idle time is "
            f"unknown, as no Jupyter server reports on them (name one to halt it): {names}"
        )
    for err in list(errors)[:most]:
        p.line(f"  {p.mark('error')} {line(err)}")
    if len(errors) > most:
        p.line(f"  {p.mark('error')} ... and {len(errors) - most} more (--json lists them all)")


def write_results(p: Printer, results: Sequence[Entry]) -> None:
    for r in results:
        if r["halted"]:
            freed = "" if r["freed_bytes"] is None else f", {fmt.size(r['freed_bytes'])} freed"
            p.line(f"  {p.mark('ok')} {r['name']} (pid {r['pid']}): {r['detail']}{freed}")
        else:
            p.line(f"  {p.mark('problem')} {r['name']} (pid {r['pid']}): {r['error']}")
    p.line(closing_line(results))


def closing_line(results: Sequence[Entry]) -> str:
    done = [r for r in results if r["halted"]]
    freed = sum(r["freed_bytes"] or 0 for r in done)
    text = f"Halted {len(done)} of {len(results)} kernel(s); {fmt.size(freed)} freed."
    failed = len(results) - len(done)
    if failed:
        text += f" {failed} could not be halted."
    return text
