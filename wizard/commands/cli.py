"""Command line: ``python -m wizard [options]`` and its sub-commands.

The one place where exceptions become exit codes: usage errors are one line and
exit 2 (``base.run_command``), Ctrl-C is 130, a closed pipe keeps the exit code the
command had decided on, and anything unforeseen is one line, never a traceback, unless
the user asks for it (``--traceback`` or ``WIZARD_DEBUG=1``, for a bug report).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from wizard.base import exitcodes
from wizard.base.failure import where
from wizard.commands import base, registry

if TYPE_CHECKING:
    from wizard.report.context import Context


def main(argv: Sequence[str] | None = None, ctx: Context | None = None) -> NoReturn:
    """Entry point. Calls sys.exit itself so zipapp builds keep the exit code."""
    code = run(argv, ctx)
    try:  # what went to sys.stdout itself (argparse's --help) is flushed here, not at exit
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _silence_stdout()
    sys.exit(code)


def run(argv: Sequence[str] | None = None, ctx: Context | None = None) -> int:
    from wizard.report.context import Context

    ctx = ctx or Context()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        name = argv[0] if argv and argv[0] in registry.COMMANDS else ""
        module = registry.module_of(name)
        return base.run_command(module, argv[1:] if name else argv, ctx)
    except KeyboardInterrupt:
        _say(ctx, "wizard: interrupted")
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, keep Python from
        # complaining again when it flushes stdout at exit, and keep the verdict.
        _silence_stdout()
        return ctx.outcome if ctx.outcome is not None else exitcodes.OK
    except SystemExit:
        raise
    except Exception as exc:  # the last net: one line, never a traceback
        if base.debugging(argv, ctx.environ):
            raise
        _say(
            ctx,
            f"wizard: internal error: {type(exc).__name__} at {where(exc)} (run it again with "
            f"{base.TRACEBACK_OPTION} or {base.DEBUG_ENV}=1 to see the traceback)",
        )
        return exitcodes.PROBLEM


def _say(ctx: Context, text: str) -> None:
    try:
        ctx.stderr.write(text + "\n")
        ctx.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
