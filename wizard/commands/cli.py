"""Command line: ``python -m wizard [options]`` and its sub-commands.

Start-up matters (the wizard runs when memory is nearly gone), so this module
imports only what the chosen command needs; ``--help`` imports no probe.
"""

import os
import sys

from wizard.base import exitcodes

# Sub-commands: name -> (module, one-line description). Each module has main(argv, ctx) -> int.
COMMANDS = {
    "run": ("wizard.commands.run", "run a notebook's code outside Jupyter and say how it ended"),
    "halt": ("wizard.commands.halt", "shut kernels down to free memory"),
    "watch": (
        "wizard.commands.watch",
        "record kernels' memory and how each one dies (leave it running)",
    ),
    "history": (
        "wizard.commands.history",
        "list the kernel deaths the recorder saw, and why they died",
    ),
}

DESCRIPTION = """\
Find out why a Jupyter kernel died and what to do now. It checks memory (the
container's cgroup limit and the OOM killer's record), the open kernels with
the notebook each belongs to, the Jupyter servers and the kernelspecs, then
points to the section of the troubleshooting site that fits."""


def available_commands():
    """Sub-commands whose module is present (the single-file build carries them all)."""
    import importlib.util

    return {
        name: spec
        for name, spec in COMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


def new_parser(**kwargs):
    """An ArgumentParser whose errors are one line on stderr (exit 2), not usage + error."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            self.exit(exitcodes.USAGE, f"{self.prog}: {message} (see --help)\n")

    return Parser(**kwargs)


def build_parser():
    import argparse

    cmds = available_commands()
    epilog = ""
    if cmds:
        epilog = "commands:\n" + "\n".join(
            f"  {name:<10}{desc}  (python -m wizard {name} --help)"
            for name, (_, desc) in cmds.items()
        )
    epilog += "\n\nexit codes:\n" + "\n".join(
        f"  {code:<4}{text}" for code, text in exitcodes.ALL.items()
    )
    parser = new_parser(
        prog="python -m wizard",
        description=DESCRIPTION,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the evidence under each check"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON; asks no questions"
    )
    parser.add_argument(
        "--no-input",
        action="store_true",
        help="never ask questions (the default without a terminal)",
    )
    parser.add_argument(
        "--banner",
        metavar="TEXT",
        help='what the message said, e.g. "Kernel last terminated by signal SIGSEGV."',
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also start each kernelspec's interpreter to see that it runs",
    )
    parser.add_argument(
        "--docs-url",
        metavar="BASE",
        help="base URL of the troubleshooting site (default: $WIZARD_DOCS_URL or the published "
        "site); a local build works too: file:///path/to/html/",
    )
    from wizard import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv=None, ctx=None):
    """Entry point. Calls sys.exit itself so zipapp builds keep the exit code."""
    sys.exit(run(argv, ctx))


def run(argv=None, ctx=None):
    from wizard.report.context import Context

    ctx = ctx or Context()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            import importlib

            module = importlib.import_module(COMMANDS[argv[0]][0])
            return module.main(argv[1:], ctx)
        return diagnose(argv, ctx)
    except KeyboardInterrupt:
        _say(ctx, "wizard: interrupted")
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        _silence_stdout()
        return exitcodes.OK
    except SystemExit:
        raise
    except Exception as exc:  # the last net: one line, never a traceback
        from wizard.probes.collect import _where

        _say(ctx, f"wizard: internal error: {type(exc).__name__} at {_where(exc)}")
        return exitcodes.PROBLEM


def _say(ctx, text):
    try:
        ctx.stderr.write(text + "\n")
        ctx.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def diagnose(argv, ctx):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version exit 0, errors exit 2
        return exitcodes.USAGE if exc.code else exitcodes.OK

    from wizard.diagnosis import banner as banner_mod
    from wizard.diagnosis import docs_map, rules
    from wizard.probes.collect import gather

    base = docs_map.docs_base(args.docs_url)
    interactive = not args.no_input and not args.json and ctx.stdin_isatty
    answers = {"banner": None, "intentional": None}
    if args.banner is not None:
        answers["banner"] = banner_mod.parse(args.banner)

    if interactive:
        from wizard.commands import walk

        return walk.session(ctx, args, answers, base)

    facts = gather(deep=args.deep)
    facts.update(answers)
    findings = rules.evaluate(facts, base)
    code = exit_code(findings)
    if args.json:
        from wizard.report import jsonout as render_json

        render_json.write(ctx.stdout, facts, findings, base, code)
    else:
        from wizard.report import text as render_text

        render_text.write(ctx, facts, findings, verbose=args.verbose)
    ctx.stdout.flush()
    return code


def exit_code(findings):
    bad = any(f["severity"] in ("problem", "warning") for f in findings)
    return exitcodes.PROBLEM if bad else exitcodes.OK
