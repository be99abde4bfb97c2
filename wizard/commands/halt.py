"""``python -m wizard halt``: shut kernels down to free memory.

Lists what it would halt (notebook, memory, idle time), asks on a terminal, then
shuts each kernel down through its Jupyter server, or by signal when no server
owns it, and says how much memory came back. See ``wizard.engines.halting``.
"""

from wizard.base import exitcodes, fmt
from wizard.engines import halting

PROG = "python -m wizard halt"
SCHEMA = "kernel-wizard-halt/1"

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

EPILOG = """\
examples:
  python -m wizard halt analysis.ipynb
  python -m wizard halt --idle 30m --yes
  python -m wizard halt --all-except thesis.ipynb --dry-run

exit codes:
  0   done: every kernel listed was halted, or there was nothing to halt
  1   a kernel could not be halted, or nothing was halted because it was not
      confirmed (no terminal and no --yes, or the answer was no)
  2   usage error: a target that names no kernel or several, a bad option
  130 interrupted (Ctrl-C)"""


def _duration(text):
    import argparse

    try:
        return fmt.parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (examples: 90s, 30m, 2h, 1d)"
        ) from None


def build_parser():
    import argparse

    from wizard.commands.cli import new_parser

    parser = new_parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0; errors were printed in one line
        return exitcodes.USAGE if exc.code else exitcodes.OK
    if not (args.targets or args.idle is not None or args.all_except):
        _error(ctx, "name what to halt: a notebook, a kernel id or a PID, or --idle / --all-except")
        return exitcodes.USAGE

    facts = halting.gather()
    try:
        picked = halting.select(
            facts["kernels"],
            facts["servers"],
            targets=args.targets,
            idle=args.idle,
            all_except=args.all_except,
            now=facts["now"],
        )
    except halting.TargetError as e:
        for line in facts["errors"]:
            _error(ctx, f"note: {line}")
        _error(ctx, str(e))
        return exitcodes.USAGE

    if args.json:
        return _json(ctx, args, facts, picked)

    reasons = {k["pid"]: reason for k, reason in picked["chosen"]}
    kernels = [k for k, _ in picked["chosen"]]
    report = halting.halt_kernels(
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
        "errors": facts["errors"],
        "exit_code": code,
    }
    json.dump(out, ctx.stdout, indent=2)
    ctx.stdout.write("\n")
    ctx.stdout.flush()
    return code


def _error(ctx, text):
    ctx.stderr.write(f"{PROG}: {text}\n")
    ctx.stderr.flush()
