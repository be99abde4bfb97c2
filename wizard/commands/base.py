"""What every command shares: its parser, one-line usage errors (exit 2), one error prefix,
and its exit-code table, which feeds both ``--help`` and the site.

A command module has ``NAME`` ("" for the main report), ``EXIT_CODES`` ({code: meaning}),
``build_parser()`` and ``main(argv, ctx) -> int``; it raises ``UsageError`` for a
problem with what the user asked and returns an exit code otherwise.
"""

from wizard.base import exitcodes
from wizard.base.failure import UsageError
from wizard.base.invocation import prog

__all__ = ["UsageError"]


def prog_of(name):
    """``python -m wizard halt``: the command as the user runs it."""
    return f"{prog()} {name}".rstrip()


def exit_code_text(table):
    """The ``exit codes:`` block of ``--help``."""
    return "exit codes:\n" + "\n".join(f"  {code:<4}{text}" for code, text in table.items())


def new_parser(name, description, exit_codes, epilog="", **kwargs):
    """An ArgumentParser whose errors are one line on stderr (exit 2), not usage + error."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            self.exit(exitcodes.USAGE, f"{self.prog}: {message} (see --help)\n")

    tail = exit_code_text(exit_codes)
    return Parser(
        prog=prog_of(name),
        description=description,
        epilog=f"{epilog.rstrip()}\n\n{tail}" if epilog else tail,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def parse(parser, argv):
    """``(args, None)``, or ``(None, exit code)`` after --help (0) or a usage error (2)."""
    try:
        return parser.parse_args(argv), None
    except SystemExit as exc:  # argparse: --help/--version exit 0, errors exit 2
        return None, (exitcodes.USAGE if exc.code else exitcodes.OK)


def say(ctx, name, text):
    """One line on stderr, prefixed with the command as the user ran it."""
    try:
        ctx.stderr.write(f"{prog_of(name)}: {text}\n")
        ctx.stderr.flush()
    except (OSError, ValueError):
        pass


def run_command(module, argv, ctx):
    """``module.main(argv, ctx)`` with its usage errors turned into one line and exit 2."""
    try:
        return module.main(argv, ctx)
    except UsageError as exc:
        say(ctx, module.NAME, str(exc))
        return exitcodes.USAGE


def findings_exit_code(findings):
    """1 when a problem or a warning was found, else 0."""
    bad = any(f["severity"] in ("problem", "warning") for f in findings)
    return exitcodes.PROBLEM if bad else exitcodes.OK


def docs_url(text):
    """``--docs-url`` checked (argparse ``type``): a bad one is a usage error, exit 2."""
    import argparse

    from wizard.diagnosis.docs_map import checked_base

    try:
        return checked_base(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
