"""One object for the streams and terminal facts, so tests can swap them."""

import os
import sys


class Context:
    def __init__(self, stdin=None, stdout=None, stderr=None, environ=None):
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.environ = environ if environ is not None else os.environ
        # the exit code a command has decided on before it prints: a reader that goes
        # away mid-output (`| head`) must not turn "problem found" into success
        self.outcome = None

    def _isatty(self, stream):
        try:
            return stream is not None and stream.isatty()
        except (AttributeError, ValueError, OSError):
            return False

    @property
    def stdin_isatty(self):
        return self._isatty(self.stdin)

    @property
    def stdout_isatty(self):
        return self._isatty(self.stdout)

    @property
    def color(self):
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
    def unicode(self):
        """Whether the output can show the check marks; ASCII marks otherwise."""
        enc = (getattr(self.stdout, "encoding", None) or "").lower().replace("-", "")
        return enc in ("utf8", "utf16", "utf32")
