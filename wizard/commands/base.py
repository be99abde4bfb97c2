"""What every command shares: its parser, one-line usage errors (exit 2), one error prefix,
and its exit-code table, which feeds both ``--help`` and the site.

A command module has ``NAME`` ("" for the main report), ``EXIT_CODES`` ({code: meaning}),
``build_parser()`` and ``main(argv, ctx) -> int``; it raises ``UsageError`` for a
problem with what the user asked and returns an exit code otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from wizard.base import exitcodes
from wizard.base.failure import UsageError
from wizard.base.invocation import prog

if TYPE_CHECKING:
    import argparse
    from types import ModuleType

    from wizard.base.shapes import Finding
    from wizard.report.context import Context

__all__ = ["UsageError"]


def prog_of(name: str) -> str:
    """``python -m wizard halt``: the command as the user runs it."""
    return f"{prog()} {name}".rstrip()


def exit_code_text(table: Mapping[int, str]) -> str:
    """The ``exit codes:`` block of ``--help``."""
    return "exit codes:\n" + "\n".join(f"  {code:<4}{text}" for code, text in table.items())


def new_parser(
    name: str, description: str, exit_codes: Mapping[int, str], epilog: str = "", **kwargs: Any
) -> argparse.ArgumentParser:
    """An ArgumentParser whose errors are one line on stderr (exit 2), not usage + error."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            self.exit(exitcodes.USAGE, f"{self.prog}: {message} (see --help)\n")

    tail = exit_code_text(exit_codes)
    parser = Parser(
        prog=prog_of(name),
        description=description,
        epilog=f"{epilog.rstrip()}\n\n{tail}" if epilog else tail,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    # Read by cli.run before any parser runs; declared here so every command accepts it
    # and its --help and the site's options tables list it.
    parser.add_argument(
        TRACEBACK_OPTION,
        action="store_true",
        help=f"on an internal error, show Python's traceback (also {DEBUG_ENV}=1)",
    )
    return parser


TRACEBACK_OPTION = "--traceback"
DEBUG_ENV = "WIZARD_DEBUG"


def debugging(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether an internal error shows its traceback: ``--traceback`` or WIZARD_DEBUG=1."""
    args = list(argv)
    args = args[: args.index("--")] if "--" in args else args
    return TRACEBACK_OPTION in args or environ.get(DEBUG_ENV, "") not in ("", "0")


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[argparse.Namespace | None, int | None]:
    """``(args, None)``, or ``(None, exit code)`` after --help (0) or a usage error (2)."""
    try:
        return parser.parse_args(argv), None
    except SystemExit as exc:  # argparse: --help/--version exit 0, errors exit 2
        return None, (exitcodes.USAGE if exc.code else exitcodes.OK)


def say(ctx: Context, name: str, text: str) -> None:
    """One line on stderr, prefixed with the command as the user ran it."""
    try:
        ctx.stderr.write(f"{prog_of(name)}: {text}\n")
        ctx.stderr.flush()
    except (OSError, ValueError):
        pass


def run_command(module: ModuleType, argv: Sequence[str], ctx: Context) -> int:
    """``module.main(argv, ctx)`` with its usage errors turned into one line and exit 2."""
    try:
        code: int = module.main(argv, ctx)
        return code
    except UsageError as exc:
        say(ctx, module.NAME, str(exc))
        return exitcodes.USAGE


def findings_exit_code(findings: Sequence[Finding]) -> int:
    """1 when a problem or a warning was found, else 0."""
    bad = any(f["severity"] in ("problem", "warning") for f in findings)
    return exitcodes.PROBLEM if bad else exitcodes.OK


def docs_url(text: str) -> str:
    """``--docs-url`` checked (argparse ``type``): a bad one is a usage error, exit 2."""
    import argparse

    from wizard.diagnosis.docs_map import checked_base

    try:
        return checked_base(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
