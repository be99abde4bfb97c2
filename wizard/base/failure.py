"""Failures of a check, as plain data: which check, and one line saying what went wrong.

Every layer reports what it could not do this way; the reports print the line and
mark the check. ``where(exc)`` names the place of an unforeseen exception (file and
line), never its message: messages can carry paths or values we do not vet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.base.shapes import Failure


class UsageError(Exception):
    """A problem with what the user asked or gave: one line on stderr, exit 2."""


def error(check: str, message: object) -> Failure:
    """``{"check", "message"}``: a check that could not complete, and why (one line)."""
    return {"check": check, "message": " ".join(str(message).split())}


def line(err: Failure) -> str:
    """The printed form: ``memory: cannot read ...``."""
    return f"{err['check']}: {err['message']}"


def where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown place"
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
