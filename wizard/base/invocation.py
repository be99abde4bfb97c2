"""How the user started the wizard: every command line it prints begins this way.

``python3 wizard.pyz`` for the single-file download, ``kernel-wizard`` for the
console script, else ``python -m wizard`` with the interpreter's own name. A user
copies what the wizard prints, so it must be a command they have.
"""

from __future__ import annotations

import os
import sys

_forced: str | None = None


def prog() -> str:
    """The start of a command line that runs the wizard the way it runs now."""
    if _forced:
        return _forced
    env = os.environ.get("WIZARD_PROG")
    if env:
        return env
    argv0 = sys.argv[0] if sys.argv else ""
    python = os.path.basename(sys.executable or "") or "python3"
    if python.lower().startswith("python") and python.lower().endswith(".exe"):
        python = python[:-4]
    if not python.lower().startswith("python"):
        python = "python3"
    if argv0.endswith(".pyz"):
        return f"{python} {argv0}"
    if os.path.basename(argv0) in ("kernel-wizard", "kernel-wizard.exe"):
        return "kernel-wizard"
    return f"{python} -m wizard"


def force(text: str | None) -> None:
    """Fix what ``prog()`` returns (the site shows the download's form); None undoes it."""
    global _forced
    _forced = text


def command(*words: str | None) -> str:
    """A wizard command line: ``command("halt", "--idle", "15m")``."""
    return " ".join([prog(), *[w for w in words if w]])
