"""One object for the streams and terminal facts, so tests can swap them."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, Any


class ReaderGone:
    """A stream that outlives its reader: after a closed pipe (``| head``) writes are
    dropped, so the command finishes and exits with the code it would have had."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.gone = False

    def _drop(self) -> None:
        self.gone = True
        try:  # the interpreter's own flush at exit must not hit the closed pipe either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class Context:
    def __init__(
        self,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.stdin: Any = stdin if stdin is not None else sys.stdin
        self.stdout: Any = stdout if stdout is not None else ReaderGone(sys.stdout)
        self.stderr: Any = stderr if stderr is not None else sys.stderr
        self.environ: Mapping[str, str] = environ if environ is not None else os.environ
        # the exit code a command has decided on before it prints: a reader that goes
        # away mid-output (`| head`) must not turn "problem found" into success
        self.outcome: int | None = None

    def _isatty(self, stream: Any) -> bool:
        try:
            return stream is not None and stream.isatty()
        except (AttributeError, ValueError, OSError):
            return False

    @property
    def stdin_isatty(self) -> bool:
        return self._isatty(self.stdin)

    @property
    def stdout_isatty(self) -> bool:
        return self._isatty(self.stdout)

    @property
    def color(self) -> bool:
        """NO_COLOR wins, then FORCE_COLOR, then TERM=dumb, then whether stdout is a terminal."""
        env = self.environ
        if env.get("NO_COLOR"):
            return False
        if env.get("FORCE_COLOR"):
            return True
        if env.get("TERM") == "dumb":
            return False
        return self.stdout_isatty

    @property
    def unicode(self) -> bool:
        """Whether the output can show the check marks; ASCII marks otherwise."""
        enc = (getattr(self.stdout, "encoding", None) or "").lower().replace("-", "")
        return enc in ("utf8", "utf16", "utf32")
