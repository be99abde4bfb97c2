"""``python -m wizard halt``: shut kernels down to free memory.

Lists what it would halt (notebook, memory, idle time), asks on a terminal, then
shuts each kernel down through its Jupyter server, or by signal when no server
owns it, and says how much memory came back. See ``wizard.engines.halting``.
"""

from wizard.base import exitcodes, fmt
from wizard.base.failure import line
from wizard.base.invocation import command
from wizard.commands.base import UsageError, new_parser, parse, say
from wizard.engines import halt_select, halting
from wizard.report import halt_text

NAME = "halt"
SCHEMA = "kernel-wizard-halt/1"
EXIT_CODES = {
    exitcodes.OK: "done: every kernel listed was halted, or there was nothing to halt",
    exitcodes.PROBLEM: "a kernel could not be halted, or nothing was halted because it was not "
    "confirmed (no terminal and no --yes, or the answer was no)",
    exitcodes.USAGE: "usage error: a target that names no kernel or several, a bad option",
    exitcodes.INTERRUPTED: "interrupted (Ctrl-C)",
}

DESCRIPTION = """\
Shut kernels down to free memory. A kernel that a running Jupyter server owns is
shut down through that server, so its notebook shows it; any other kernel gets
SIGTERM, then SIGKILL after --grace seconds. Only your own kernels (and the
processes they started) are touched; servers and other processes never are.

A TARGET is a notebook (its path, its path relative to the server's root, or its
file name when only one kernel's notebook has that name), a kernel id (or a
unique start of one, 4 characters or more) or a kernel's PID. It first lists what it would halt and
asks on a terminal; without a terminal it halts nothing unless --yes is given
(--json never asks)."""


def _epilog():
    return "examples:\n" + "\n".join(
        "  " + command("halt", *args)
        for args in (
            ("analysis.ipynb",),
            ("--idle", "30m", "--yes"),
            ("--all-except", "thesis.ipynb", "--dry-run"),
        )
    )


def _duration(text):
    import argparse

    try:
        return fmt.parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (examples: 90s, 30m, 2h, 1d)"
        ) from None


def build_parser():
    parser = new_parser(NAME, DESCRIPTION, EXIT_CODES, _epilog())
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help="a notebook, a kernel id or a PID"
    )
    parser.add_argument(
        "--idle",
        type=_duration,
        metavar="DURATION",
        help="every kernel idle at least this long (e.g. 30m), as its Jupyter server reports; "
        "busy kernels and kernels no server knows are left running",
    )
    parser.add_argument(
        "--all-except",
        action="append",
        default=[],
        metavar="NOTEBOOK",
        help="every kernel but this notebook's (repeat to spare more); wins over the rest",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask; halt them")
    parser.add_argument(
        "-n", "--dry-run", action="store_true", help="only list what would be halted"
    )
    parser.add_argument(
        "--grace",
        type=_duration,
        default=halting.GRACE,
        metavar="SECONDS",
        help=f"time between SIGTERM and SIGKILL (default {halting.GRACE:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv, ctx):
    from wizard.probes.collect import gather_kernels

    args, code = parse(build_parser(), argv)
    if args is None:
        return code
    if not (args.targets or args.idle is not None or args.all_except):
        raise UsageError(
            "name what to halt: a notebook, a kernel id or a PID, or --idle / --all-except"
        )

    facts = gather_kernels(uid=halt_select.my_uid())
    try:
        picked = halt_select.select(
            facts["kernels"],
            facts["servers"],
            targets=args.targets,
            idle=args.idle,
            all_except=args.all_except,
        )
    except halt_select.TargetError as e:
        for err in facts["errors"]:
            say(ctx, NAME, f"note: {line(err)}")
        raise UsageError(str(e)) from None

    if args.json:
        return _json(ctx, args, facts, picked)

    reasons = {k["pid"]: reason for k, reason in picked["chosen"]}
    kernels = [k for k, _ in picked["chosen"]]
    report = halt_kernels(
        kernels,
        facts["servers"],
        ctx,
        grace=args.grace,
        yes=args.yes,
        dry_run=args.dry_run,
        reasons=reasons,
        skipped=picked["skipped"],
        errors=facts["errors"],
    )
    ctx.stdout.flush()
    return report["exit_code"]


def _json(ctx, args, facts, picked):
    import json

    from wizard import __version__

    entries = halting.plan(picked["chosen"], facts["servers"])
    results = []
    confirmed = None
    note = None
    runnable = [e for e in entries if not e["problem"]]
    if not entries:
        note = "nothing to halt"
        code = exitcodes.OK
    elif args.dry_run:
        note = "dry run: nothing was halted"
        code = exitcodes.OK
    elif runnable and not args.yes:
        note = "nothing was halted: --json never asks; add --yes"
        confirmed = False
        code = exitcodes.PROBLEM
    else:
        confirmed = True if runnable else None  # --yes
        results = halting.halt(entries, facts["servers"], grace=args.grace)
        code = exitcodes.OK if all(r["halted"] for r in results) else exitcodes.PROBLEM
    out = {
        "schema": SCHEMA,
        "version": __version__,
        "dry_run": args.dry_run,
        "confirmed": confirmed,
        "note": note,
        "selected": [{k: v for k, v in e.items() if k != "started"} for e in entries],
        "skipped": picked["skipped"],
        "results": results,
        "freed_bytes": sum(r["freed_bytes"] or 0 for r in results if r["halted"]),
        "errors": [line(e) for e in facts["errors"]],
        "exit_code": code,
    }
    json.dump(out, ctx.stdout, indent=2)
    ctx.stdout.write("\n")
    ctx.stdout.flush()
    return code

    ctx.stderr.flush()


NO_TERMINAL = (
    "Nothing was halted: there is no terminal to confirm on. Add --yes to halt these "
    "kernels (--dry-run only lists them)."
)


def halt_kernels(
    kernels,
    servers,
    ctx,
    grace=halting.GRACE,
    yes=False,
    dry_run=False,
    ask=None,
    reasons=None,
    skipped=(),
    errors=(),
):
    """List ``kernels``, ask, halt them, say what was freed. For the terminal.

    ``kernels``: kernel dicts as the kernels probe gives them, merged with
    ``servers`` (the servers probe result) by ``servers.merge``. ``ask(question) ->
    bool`` confirms (default: y/N on ``ctx.stdin`` when it is a terminal; without a
    terminal and without ``yes`` nothing is halted). ``reasons``: optional
    ``{pid: reason}``; ``skipped`` (as ``select`` gives) and ``errors`` (lines) are
    shown under the list. Returns ``{"entries", "results", "confirmed", "freed_bytes",
    "exit_code"}``; exit_code 0 when all were halted (or there was nothing to halt),
    1 when something was not (including "not confirmed").
    """
    from wizard.report.printer import Printer
    from wizard.report.prompts import ask_terminal

    p = Printer(ctx)
    reasons = reasons or {}
    entries = halting.plan([(k, reasons.get(k.get("pid"), "named")) for k in kernels], servers)
    report = {"entries": entries, "results": [], "confirmed": None, "freed_bytes": 0}
    if not entries:
        halt_text.write_skipped(p, skipped, errors)
        p.line("Nothing to halt.")
        report["exit_code"] = exitcodes.OK
        return report
    halt_text.write_plan(p, entries, "Would halt" if dry_run else "Will halt")
    halt_text.write_skipped(p, skipped, errors)
    if dry_run:
        report["exit_code"] = exitcodes.OK
        return report
    if not any(not e["problem"] for e in entries):
        p.line()
        results = halting.halt(entries, servers, grace)
        halt_text.write_results(p, results)
        report.update(results=results, exit_code=exitcodes.PROBLEM)
        return report
    if not yes:
        if ask is None and ctx.stdin_isatty:
            ask = ask_terminal(ctx)
        if ask is None:
            p.line(NO_TERMINAL)
            report.update(confirmed=False, exit_code=exitcodes.PROBLEM)
            return report
        n = sum(1 for e in entries if not e["problem"])
        if not ask(f"Halt {'this kernel' if n == 1 else f'these {n} kernels'}?"):
            p.line("Nothing was halted.")
            report.update(confirmed=False, exit_code=exitcodes.PROBLEM)
            return report
    report["confirmed"] = True
    p.line()
    ctx.stdout.flush()
    results = halting.halt(entries, servers, grace)
    halt_text.write_results(p, results)
    report.update(
        results=results,
        freed_bytes=sum(r["freed_bytes"] or 0 for r in results if r["halted"]),
        exit_code=exitcodes.OK if all(r["halted"] for r in results) else exitcodes.PROBLEM,
    )
    return report
