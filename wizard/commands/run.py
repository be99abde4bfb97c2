"""``python -m wizard run NOTEBOOK``: run a notebook's code outside Jupyter.

Step 1 of the site's "is it something else?" list, as one command: the code cells
run in order in a fresh Python process in the notebook's folder, the output
streams as it comes with one line per cell, and the report says how it ended (it
ran through, a Python exception, or death by a signal), the peak memory of the
whole process tree against the limit in force, and the verdict (memory, or a bug
in a library's native code) with the section of the site that fits.

Gathering lives in ``wizard.engines.run_exec`` (and the memory probe); this module reads
the notebook, decides, and prints.
"""

import os
import sys

from wizard.base import exitcodes
from wizard.engines.run_exec import ADDRESS_SPACE

PROG = "python -m wizard run"
SCHEMA = "kernel-wizard-run/1"
NEAR_LIMIT = 0.90  # a peak this close to the limit counts as evidence of memory
HIGH_USE = 0.75
PYTHON_NAMES = ("python", "python3")
# Output that native code prints when an allocation fails before it aborts.
ALLOC_FAILURE_TEXT = ("std::bad_alloc", "Cannot allocate memory", "out of memory")

DESCRIPTION = """\
Run a notebook's code cells in order in a fresh Python process outside Jupyter,
in the notebook's folder, and say how it ended: it ran through, a Python
exception, or a crash (a signal such as SIGKILL or SIGSEGV); the peak memory
against the limit; and whether memory or a library bug is to blame. The
notebook is only read, never changed."""

# This command's exit codes (values from wizard.base.exitcodes), for --help and the docs.
EXIT_CODES = {
    exitcodes.OK: "the code ran through",
    exitcodes.PROBLEM: "it failed: an exception, a signal, a timeout, or out of memory",
    exitcodes.USAGE: "usage or input error (missing file, not a notebook, broken JSON)",
    exitcodes.INTERRUPTED: "interrupted (Ctrl-C); the code and all it started were stopped",
}

EPILOG = (
    "Cells are numbered from the top of the notebook, starting at 1; Markdown cells\n"
    "count too, so the numbers match what you see when you scroll.\n\nexit codes:\n"
    + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
)


class InputError(Exception):
    """A problem with what the user gave us: one line, exit 2."""


def build_parser():
    import argparse

    from wizard.commands.cli import new_parser

    parser = new_parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebook", help="the .ipynb file to run")
    parser.add_argument(
        "--cells",
        metavar="RANGE",
        help="only these cells, e.g. 3, 2-5, 1,4-6 or 4- (1 = the first)",
    )
    parser.add_argument(
        "--timeout",
        metavar="TIME",
        help="stop the run after this long, e.g. 90 (seconds), 5m, 1h",
    )
    parser.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="run under this memory limit, e.g. 500M or 2G, to reproduce an out-of-memory "
        "kill safely (a child cgroup where allowed, else an address-space limit)",
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter to run the cells with (default: the one the notebook's "
        "kernelspec names, else this Python)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--docs-url",
        metavar="BASE",
        help="base URL of the troubleshooting site (default: $WIZARD_DOCS_URL or the "
        "published site)",
    )
    return parser


def main(argv, ctx):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0, errors exit 2 (one line, printed already)
        return exitcodes.USAGE if exc.code else exitcodes.OK
    if os.name != "posix":  # process groups, signals and rlimits are POSIX things
        ctx.stderr.write(f"{PROG}: runs on Linux and macOS only\n")
        return exitcodes.USAGE
    try:
        plan = make_plan(args, ctx.environ)
    except InputError as exc:
        ctx.stderr.write(f"{PROG}: {exc}\n")
        ctx.stderr.flush()
        return exitcodes.USAGE
    return run(plan, args, ctx)


# -- the notebook ----------------------------------------------------------------------


def load_notebook(path):
    """The notebook's cells and metadata; InputError with one line when it cannot be used."""
    import json

    shown = path
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a folder, not a notebook") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise InputError(f"{shown}: the file is empty, not a notebook")
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise InputError(f"{shown}: not a notebook (a notebook is a JSON object)")
    try:
        nb = json.loads(data)
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not a notebook (not text: a notebook is JSON)") from None
    except ValueError as exc:
        where = ""
        if hasattr(exc, "lineno"):
            where = f" at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise InputError(f"{shown}: broken JSON{where}; the notebook file is damaged") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        if isinstance(nb, dict) and "worksheets" in nb:
            raise InputError(
                f"{shown}: an old (nbformat 3) notebook; open and save it in Jupyter, or "
                "run: jupyter nbconvert --to notebook --inplace " + shown
            )
        raise InputError(f"{shown}: not a Jupyter notebook (no list of cells)")
    if nb.get("nbformat") != 4:
        raise InputError(f"{shown}: nbformat {nb.get('nbformat')!r}; only nbformat 4 is read")
    cells = []
    for i, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict):
            raise InputError(f"{shown}: cell {i} is not a cell object")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise InputError(f"{shown}: cell {i} has no readable source")
        cells.append({"n": i, "type": cell.get("cell_type"), "source": source})
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    spec = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    info = meta.get("language_info") if isinstance(meta.get("language_info"), dict) else {}
    language = spec.get("language") or info.get("name")
    return {
        "cells": cells,
        "kernel_name": spec.get("name") if isinstance(spec.get("name"), str) else None,
        "language": language if isinstance(language, str) else None,
    }


def parse_cells(text, count):
    """'2-5', '3', '1,4-6', '4-' -> the set of cell numbers; InputError when unreadable."""
    chosen = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo) if lo else 1
            last = (int(hi) if hi else max(count, first)) if dash else first
        except ValueError:
            raise InputError(f"--cells {text}: expected numbers like 3, 2-5 or 1,4-6") from None
        if first < 1 or last < first:
            raise InputError(f"--cells {text}: {part} is not a range of cells from 1 up")
        chosen.update(range(first, last + 1))
    if not chosen:
        raise InputError(f"--cells {text}: no cells given")
    return chosen


def first_line(source, limit=70):
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


# -- the interpreter -------------------------------------------------------------------


def kernelspec_python(name):
    """(path, why) of the interpreter the kernelspec ``name`` starts; (None, why) if none."""
    import json
    import shutil

    from wizard.system import jupyter_paths

    dirs = [
        *jupyter_paths.jupyter_path("kernels"),
        os.path.join(jupyter_paths.ipython_dir(), "kernels"),
    ]
    for d in dirs:
        spec_file = os.path.join(d, name, "kernel.json")
        try:
            with open(spec_file, encoding="utf-8") as f:
                spec = json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None, f"kernelspec {name} ({spec_file}) cannot be read"
        argv = spec.get("argv") if isinstance(spec, dict) else None
        if not argv or not isinstance(argv[0], str):
            return None, f"kernelspec {name} ({spec_file}) has no command"
        argv0 = argv[0]
        if os.path.isabs(argv0):
            if os.access(argv0, os.X_OK):
                return argv0, f"kernelspec {name}"
            return None, f"kernelspec {name} names {argv0}, which does not exist"
        # A bare "python": Jupyter starts its own interpreter. The environment the
        # spec was installed into (PREFIX/share/jupyter/kernels) is the best guess.
        prefix = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(d))))
        candidates = [os.path.join(prefix, "bin", argv0)]
        if argv0.startswith(PYTHON_NAMES):
            candidates += [os.path.join(prefix, "bin", n) for n in PYTHON_NAMES]
        for c in candidates:
            if os.path.isfile(c) and os.access(c, os.X_OK):
                return c, f"kernelspec {name}"
        found = shutil.which(argv0)
        if found:
            return found, f"kernelspec {name}, {argv0} on PATH"
        return None, f"kernelspec {name} names {argv0}, not found on PATH"
    return None, f"no kernelspec named {name}"


def choose_python(args, nb):
    import shutil

    if args.python:
        path = args.python
        if os.sep not in path:
            path = shutil.which(path) or path
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise InputError(f"--python {args.python}: no such interpreter")
        return os.path.abspath(path), "--python"
    if nb["kernel_name"]:
        path, why = kernelspec_python(nb["kernel_name"])
        if path:
            return path, why
        return sys.executable, f"this Python; {why}"
    return sys.executable, "this Python; the notebook names no kernel"


def make_plan(args, environ):
    from wizard.base import fmt

    path = os.path.abspath(args.notebook)
    nb = load_notebook(args.notebook)
    if nb["language"] and nb["language"].lower() != "python":
        raise InputError(
            f"{args.notebook}: its kernel runs {nb['language']}; run executes Python code only"
        )
    code = [c for c in nb["cells"] if c["type"] == "code"]
    selected = None
    if args.cells:
        selected = parse_cells(args.cells, len(nb["cells"]))
        code = [c for c in code if c["n"] in selected]
        if not code:
            raise InputError(f"--cells {args.cells}: no code cell in that range")
    if not code:
        raise InputError(f"{args.notebook}: the notebook has no code cells to run")
    timeout = memory_limit = None
    if args.timeout is not None:
        try:
            timeout = fmt.parse_duration(args.timeout)
        except ValueError:
            raise InputError(f"--timeout {args.timeout}: expected e.g. 90, 30s, 5m or 1h") from None
        if timeout <= 0:
            raise InputError(f"--timeout {args.timeout}: must be more than zero")
    if args.memory_limit is not None:
        try:
            memory_limit = fmt.parse_size(args.memory_limit)
        except ValueError:
            raise InputError(
                f"--memory-limit {args.memory_limit}: expected e.g. 500M or 2G"
            ) from None
        if memory_limit < (16 << 20):
            raise InputError(f"--memory-limit {args.memory_limit}: Python needs at least 16M")
    python, why = choose_python(args, nb)
    return {
        "notebook": path,
        "shown": args.notebook,
        "cwd": os.path.dirname(path),
        "python": python,
        "python_source": why,
        "cells": [{"n": c["n"], "source": c["source"]} for c in code],
        "selected": args.cells,
        "timeout": timeout,
        "memory_limit": memory_limit,
    }


# -- running ---------------------------------------------------------------------------


class LiveSink:
    """Prints the cells' output as it comes, and one progress line per cell."""

    def __init__(self, printer, plan):
        self.p = printer
        self.plan = plan
        self.sources = {c["n"]: c["source"] for c in plan["cells"]}
        self.order = {c["n"]: i for i, c in enumerate(plan["cells"], 1)}
        self.at_line_start = True

    def output(self, text):
        if not text:  # a character split across reads: nothing to show yet
            return
        self.p.out.write(text)
        self.p.out.flush()
        self.at_line_start = text.endswith("\n")

    def _line(self, text):
        if not self.at_line_start:
            self.p.out.write("\n")
        self.p.line(text)
        self.p.out.flush()
        self.at_line_start = True

    def event(self, ev):
        kind = ev.get("ev")
        if kind == "start":
            n = ev["cell"]
            rule = "──" if self.p.marks["ok"] == "✓" else "--"
            head = f"{rule} cell {n} ({self.order.get(n, '?')}/{len(self.plan['cells'])}) {rule}"
            self._line(f"{self.p.paint(head, '36')} {first_line(self.sources.get(n, ''))}")
        elif kind == "skip":
            self._line(
                f"   {self.p.mark('warning')} line {ev.get('line')} skipped: {ev.get('text')} "
                f"({ev.get('reason')})"
            )


def run(plan, args, ctx):
    import types

    from wizard.diagnosis import docs_map
    from wizard.engines import run_exec
    from wizard.report import text as render_text
    from wizard.system.sysroot import SysRoot

    base = docs_map.docs_base(args.docs_url)
    # With --json the report owns stdout; the cells' output and progress go to stderr.
    live_ctx = types.SimpleNamespace(
        stdout=ctx.stderr if args.json else ctx.stdout,
        color=ctx.color and not args.json,
        unicode=ctx.unicode,
    )
    live = render_text.Printer(live_ctx)
    root = SysRoot()
    before = probe_memory(root, oom_log=False)
    count = len(plan["cells"])
    intro = f"Running {count} code cell{'s' if count != 1 else ''} of {plan['shown']}"
    live.line(live.bold(intro) + f" with {plan['python']} ({plan['python_source']})")
    live.out.flush()
    result = run_exec.execute(plan, LiveSink(live, plan), root)
    # The kernel log only matters for a SIGKILL outside our own cgroup.
    look = result.get("signal_number") == 9 and not result.get("cgroup")
    after = probe_memory(root, oom_log=look)
    report = build_report(plan, result, before, after, base)
    if args.json:
        import json

        json.dump(report, ctx.stdout, indent=2)
        ctx.stdout.write("\n")
    else:
        write_text(render_text.Printer(ctx), report, plan)
    ctx.stdout.flush()
    return report["exit_code"]


def probe_memory(root, oom_log=False):
    """The memory probe's view (limit in force, OOM counters); errors as one line each."""
    errors = []
    try:
        from wizard.probes import memory
    except ImportError:
        return {"errors": ["memory: the memory probe is not available in this build"]}
    from wizard.probes.collect import _guard

    data = _guard("memory", errors, memory.probe, root, oom_log=oom_log) or {}
    data["errors"] = [*errors, *(f"memory: {e}" for e in data.get("errors") or [])]
    return data


# -- the report ------------------------------------------------------------------------


def memory_facts(plan, result, before, after):
    cg = result.get("cgroup") or {}
    limit, source = before.get("limit_bytes"), before.get("limit_source")
    set_limit = plan.get("memory_limit")
    if set_limit and (result.get("limit_mode") or "").startswith("cgroup"):
        if limit is None or set_limit <= limit:
            limit, source = set_limit, f"--memory-limit, child {result['limit_mode']}"
    elif set_limit:
        limit, source = set_limit, f"--memory-limit, {ADDRESS_SPACE}"
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


def describe_signal(number):
    """Name, meaning and table row of a signal number."""
    import signal

    from wizard.diagnosis import signals

    row = signals.BY_NUMBER.get(number)
    if row:
        return row["name"], row["meaning"], row
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    text = signal.strsignal(number) if hasattr(signal, "strsignal") else None
    return name, (text + "." if text else "An unusual signal."), None


def verdict(result, mem, base):
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
            "next suspect (python -m wizard), then the notebook interface."
        )
        if near:
            todo = "The peak came close to the limit: with other kernels open it would not fit."
            label = "kernel-terminated-memory"
    elif outcome == "exception" and exc.get("type") == "MemoryError":
        kind, label = "memory", "kernel-terminated-memory"
        summary = f"Out of memory: MemoryError{where}."
        todo = "Use less memory in that cell, or run it where more memory is available."
    elif outcome == "exception":
        kind, label = "exception", "kernel-terminated-eliminate-jupyter"
        summary = f"A Python exception{where}: {exc.get('type')}. An exception does not kill "
        summary += "a kernel; the notebook fails outside Jupyter too."
        todo = "Fix the error shown above and run the notebook again."
        if exc.get("type") == "EOFError":
            todo += " input() gets no answer here: the run's standard input is empty."
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
        summary = f"The code ended the process itself{where} with exit status {code} "
        summary += "(sys.exit, os._exit, or a library calling exit)."
        todo = "In Jupyter the same call ends the kernel; remove it or guard it."
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
    if result.get("skipped") and kind in ("exception", "exit"):
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


def build_report(plan, result, before, after, base):
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


def source_line(plan, n, line):
    if n is None or line is None:
        return None
    for c in plan["cells"]:
        if c["n"] == n:
            lines = c["source"].splitlines()
            return lines[line - 1].strip() if 0 < line <= len(lines) else None
    return None


# -- text ------------------------------------------------------------------------------


def write_text(p, r, plan):
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
    if r["signal"]:
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
    if r["skipped"]:
        p.line(
            f"{p.mark('warning')} IPython syntax skipped: {len(r['skipped'])} line(s); "
            f"IPython is not installed in {r['python']}"
        )
        for s in r["skipped"][:10]:
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


def ending(r):
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


def stack_lines(r, plan):
    """faulthandler's stack, the runner's own frames left out, cells named."""
    frames = r["native_stack"] or []
    if r["outcome"] not in ("signal", "timeout", "interrupted") or not frames:
        return []
    sources = {c["n"]: c["source"].splitlines() for c in plan["cells"]}
    out = []
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
