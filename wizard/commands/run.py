"""``python -m wizard run NOTEBOOK``: run a notebook's code outside Jupyter.

Step 1 of the site's "is it something else?" list, as one command: the code cells
run in order in a fresh Python process in the notebook's folder, the output
streams as it comes with one line per cell, and the report says how it ended (it
ran through, a Python exception, or death by a signal), the peak memory of the
whole process tree against the limit in force, and the verdict (memory, or a bug
in a library's native code) with the section of the site that fits.

The notebook is read by ``wizard.engines.notebook``, the run planned by
``run_plan`` and executed by ``run_exec``; ``wizard.diagnosis.run_verdict`` decides
and ``wizard.report.run_text`` prints.
"""

import os

from wizard.base import exitcodes
from wizard.base.failure import UsageError
from wizard.commands.base import docs_url, new_parser, parse
from wizard.report.printer import Printer

NAME = "run"

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
    "count too, so the numbers match what you see when you scroll."
)


def build_parser():
    parser = new_parser(NAME, DESCRIPTION, EXIT_CODES, EPILOG)
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
        type=docs_url,
        help="base URL of the troubleshooting site (default: $WIZARD_DOCS_URL or the "
        "published site)",
    )
    return parser


def main(argv, ctx):
    from wizard.engines.run_plan import make_plan

    args, code = parse(build_parser(), argv)
    if args is None:
        return code
    if os.name != "posix":  # process groups, signals and rlimits are POSIX things
        raise UsageError("runs on Linux and macOS only")
    return run(make_plan(args, ctx.environ), args, ctx)


def run(plan, args, ctx):
    import types

    from wizard.diagnosis import docs_map
    from wizard.diagnosis.run_verdict import build_report
    from wizard.engines import run_exec
    from wizard.report.run_text import LiveSink, write_text
    from wizard.system.sysroot import SysRoot

    base = docs_map.docs_base(args.docs_url)
    # With --json the report owns stdout; the cells' output and progress go to stderr.
    live_ctx = types.SimpleNamespace(
        stdout=ctx.stderr if args.json else ctx.stdout,
        color=ctx.color and not args.json,
        unicode=ctx.unicode,
    )
    live = Printer(live_ctx)
    root = SysRoot()
    before = probe_memory(root, oom_log=False)
    count = len(plan["cells"])
    intro = f"Running {count} code cell{'s' if count != 1 else ''} of {plan['shown']}"
    live.line(live.bold(intro) + f" with {plan['python']} ({plan['python_source']})")
    live.out.flush()
    plan["stdin_tty"] = ctx.stdin_isatty
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
        write_text(Printer(ctx), report, plan)
    ctx.stdout.flush()
    return report["exit_code"]


def probe_memory(root, oom_log=False):
    """The memory probe's view (limit in force, OOM counters); errors as one line each."""
    errors = []
    try:
        from wizard.probes import memory
    except ImportError:
        return {"errors": ["memory: the memory probe is not available in this build"]}
    from wizard.base.failure import line
    from wizard.probes.collect import guard

    data = guard("memory", errors, memory.probe, root, oom_log=oom_log) or {}
    data["errors"] = [*map(line, errors), *(f"memory: {e}" for e in data.get("errors") or [])]
    return data
