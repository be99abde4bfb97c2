"""``wizard run`` on a terminal: the cells' output as it comes, then the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wizard.base import exitcodes
from wizard.base.thresholds import HIGH_USE, NEAR_LIMIT
from wizard.diagnosis import run_verdict
from wizard.engines.notebook import first_line
from wizard.engines.run_exec import ADDRESS_SPACE

if TYPE_CHECKING:
    from wizard.diagnosis.run_verdict import Plan
    from wizard.report.printer import Printer

# The report of wizard run (run_verdict.build_report)
RunReport = Mapping[str, Any]


class LiveSink:
    """Prints the cells' output as it comes, and one progress line per cell."""

    def __init__(self, printer: Printer, plan: Plan) -> None:
        self.p = printer
        self.plan = plan
        self.sources = {c["n"]: c["source"] for c in plan["cells"]}
        self.order = {c["n"]: i for i, c in enumerate(plan["cells"], 1)}
        self.at_line_start = True

    def output(self, text: str) -> None:
        if not text:  # a character split across reads: nothing to show yet
            return
        self.p.out.write(text)
        self.p.out.flush()
        self.at_line_start = text.endswith("\n")

    def _line(self, text: str) -> None:
        if not self.at_line_start:
            self.p.out.write("\n")
        self.p.line(text)
        self.p.out.flush()
        self.at_line_start = True

    def event(self, ev: Mapping[str, Any]) -> None:
        kind = ev.get("ev")
        if kind == "start":
            n = ev["cell"]
            rule = "──" if self.p.marks["ok"] == "✓" else "--"
            head = f"{rule} cell {n} ({self.order.get(n, '?')}/{len(self.plan['cells'])}) {rule}"
            self._line(f"{self.p.paint(head, '36')} {first_line(self.sources.get(n, ''))}")
        elif kind == "skip":
            mark = "warning" if run_verdict.ipython_missing([ev]) else "info"
            self._line(
                f"   {self.p.mark(mark)} line {ev.get('line')} skipped: {ev.get('text')} "
                f"({ev.get('reason')})"
            )


def write_text(p: Printer, r: RunReport, plan: Plan) -> None:
    from wizard.base import fmt

    p.line()
    ran = len(r["cells_run"])
    head = f"Ran {ran} of {len(r['cells_planned'])} code cells in {r['duration_seconds']:.1f} s"
    if r["python_version"]:
        head += f" (Python {r['python_version']})"
    p.line(p.bold(head))
    ok = r["verdict"]["kind"] == "finished" or r["exit_code"] == exitcodes.OK
    p.line(f"{p.mark('ok' if ok else 'problem')} How it ended: {ending(r)}")
    if r["source_line"]:
        p.line(f"      cell {r['cell']}, line {r['line']}: {r['source_line']}")
    frames = [f for f in (r["exception"] or {}).get("frames") or [] if f.get("cell")]
    if frames and (frames[-1]["cell"], frames[-1]["line"]) != (r["cell"], r["line"]):
        f = frames[-1]
        p.line(f"      raised in cell {f['cell']}, line {f['line']}: {f['text']}")
    if r["signal"] and r["outcome"] in ("timeout", "interrupted"):
        p.line(f"      stopped by the wizard with {r['signal']['name']}")  # not a cause to look for
    elif r["signal"]:
        p.line(f"      {r['signal']['meaning']}")
    stack = stack_lines(r, plan)
    if stack:
        title = "where it was" if r["outcome"] in ("timeout", "interrupted") else "at the crash"
        p.line(f"      Python stack {title} (most recent call first):")
        for line in stack:
            p.line(f"        {line}")
    if r["extension_modules"] and r["outcome"] == "signal":
        mods = r["extension_modules"]
        shown = ", ".join(mods[:8]) + (f" and {len(mods) - 8} more" if len(mods) > 8 else "")
        p.line(f"      Native modules loaded: {shown}")
    if r["outcome"] == "not-started" and r["output_tail"]:
        for line in r["output_tail"].strip().splitlines()[-5:]:
            p.line(f"      {line}")

    m = r["memory"]
    share = m["share"]
    status = "info"
    if share is not None and m["limit_mode"] != ADDRESS_SPACE:  # virtual size, not resident
        status = "problem" if share >= NEAR_LIMIT else "warning" if share >= HIGH_USE else "ok"
    text = f"Peak memory: {fmt.size(m['peak_bytes'])}"
    if m["limit_bytes"]:
        text += f" of {fmt.size(m['limit_bytes'])}"
        if share is not None:
            text += f" ({100 * share:.0f}%)"
        text += f", limit from {m['limit_source']}"
    else:
        text += ", limit unknown"
    p.line(f"{p.mark(status)} {text}")
    measured = f"      measured as {m['peak_source']}"
    if m["peak_rss_bytes"] and m["peak_rss_bytes"] != m["peak_bytes"]:
        if m["peak_rss_bytes"] > m["peak_bytes"]:
            # A cgroup is charged only for the pages it brought in; the resident size
            # also counts pages shared with others (libraries, cached files).
            measured += (
                " (what the limit counts); resident size with the pages shared with other "
                f"processes: at most {fmt.size(m['peak_rss_bytes'])}"
            )
        else:
            measured += f"; resident set size at most {fmt.size(m['peak_rss_bytes'])}"
    p.line(measured)
    if m["limit_note"]:
        p.line(f"      {m['limit_note']}")
    if m["oom_kills"] is None:
        p.line(f"{p.mark('info')} Out-of-memory kills during the run: no counter readable here")
    elif m["oom_kills"]:
        where = ", ".join(m["oom_where"])
        p.line(
            f"{p.mark('problem')} Out-of-memory kills during the run: {m['oom_kills']} ({where})"
        )
    else:
        p.line(f"{p.mark('ok')} Out-of-memory kills during the run: none")
    missing = run_verdict.ipython_missing(r["skipped"])
    if missing:
        p.line(
            f"{p.mark('warning')} IPython syntax skipped: {len(missing)} line(s); "
            f"IPython is not installed in {r['python']}"
        )
        for s in missing[:10]:
            p.line(f"      cell {s['cell']}, line {s['line']}: {s['text']}")
    notes = run_verdict.runner_notes(r["skipped"])
    if notes:
        p.line(
            f"{p.mark('info')} Left out because the run has no window, as a kernel has none: "
            f"{len(notes)} line(s); not a fault of the notebook"
        )
        for s in notes[:10]:
            p.line(f"      cell {s['cell']}, line {s['line']}: {s['text']}")
    if r["strays_stopped"]:
        n = r["strays_stopped"]
        p.line(f"{p.mark('info')} Stopped {n} process(es) the cells left running in the background")
    for e in r["errors"]:
        p.line(f"{p.mark('error')} {e}")

    v = r["verdict"]
    p.line()
    p.line(p.bold("Verdict: ") + v["summary"])
    p.line(f"  {v['todo']}")
    p.line(f"  Read: {v['url']}")
    for extra in v["see_also"]:
        p.line(f"  Also: {extra['url']}")
    if v["signal_url"]:
        p.line(f"  The signal: {v['signal_url']}")


def ending(r: RunReport) -> str:
    outcome, cell = r["outcome"], r["cell"]
    where = f" in cell {cell}" if cell is not None else ""
    if outcome == "finished":
        return "finished, every cell ran"
    if outcome == "exception":
        e = r["exception"] or {}
        msg = f": {e.get('message')}" if e.get("message") else ""
        return f"{e.get('type')}{where}{msg}"
    if outcome == "signal":
        s = r["signal"]
        after = "" if cell is not None else " after the last cell, as Python exited"
        return f"killed by {s['name']} (signal {s['number']}){where}{after}"
    if outcome == "exit":
        return f"the code ended the process with exit status {r['exit_status']}{where}"
    if outcome == "timeout":
        return f"stopped at the time limit ({r['timeout_seconds']:g} s){where}"
    if outcome == "interrupted":
        return f"interrupted{where}"
    return f"the interpreter did not start the code ({r['start_error']})"


def stack_lines(r: RunReport, plan: Plan) -> list[str]:
    """faulthandler's stack, the runner's own frames left out, cells named."""
    frames = r["native_stack"] or []
    if r["outcome"] not in ("signal", "timeout", "interrupted") or not frames:
        return []
    sources = {c["n"]: c["source"].splitlines() for c in plan["cells"]}
    out: list[str] = []
    for f in frames:
        if f["file"].endswith("run_child.py"):
            continue
        if f["file"].startswith("<cell "):
            n = int(f["file"][6:-1])
            lines = sources.get(n, [])
            text = lines[f["line"] - 1].strip() if 0 < f["line"] <= len(lines) else ""
            out.append(f"cell {n}, line {f['line']}: {text}")
        else:
            out.append(f"{f['file']}, line {f['line']}, in {f['function']}")
    return out
