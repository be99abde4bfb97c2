"""Which processes are Jupyter servers: the one answer every part of the wizard uses.

``looks_like_server(argv)`` is strict (a server's own command line: ``jupyter lab``,
``jupyter-server``, ``python -m jupyter_server``...): it decides which processes are
spared when kernels are halted and whether a kernel's parent will restart it.
``may_be_server(argv)`` is the loose test for a pid that a server's runtime file
names: anything that is not plainly another program keeps the file alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.system.processes import Procs

SERVER_MODULES = ("jupyter_server", "notebook", "jupyterlab", "nbclassic", "voila")
SERVER_EXES = (
    "jupyter-server",
    "jupyter-lab",
    "jupyter-notebook",
    "jupyter-nbclassic",
    "jupyterhub-singleuser",
    "jupyter-labhub",
    "voila",
)
SERVER_SUBCOMMANDS = ("server", "lab", "notebook", "nbclassic")
_LOOSE_WORDS = ("jupyter", "python", "notebook", "voila")


def _base(arg: str) -> str:
    base = arg.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for suffix in (".exe", "-script.py"):
        base = base.removesuffix(suffix)
    return base


def looks_like_server(argv: Sequence[str] | None) -> bool:
    """Whether a command line is a Jupyter server's (jupyter server/lab/notebook...)."""
    argv = argv or []
    n = len(argv)
    for i, a in enumerate(argv[:8]):
        base = _base(a)
        if base in SERVER_EXES:
            return True
        if a == "-m" and i + 1 < n and argv[i + 1].split(".")[0] in SERVER_MODULES:
            return True
        if base == "jupyter" and i + 1 < n and argv[i + 1] in SERVER_SUBCOMMANDS:
            return True
    return False


def may_be_server(argv: Sequence[str] | None) -> bool:
    """Whether the process a server's runtime file names can still be that server."""
    text = " ".join(argv or []).lower()
    return any(w in text for w in _LOOSE_WORDS)


def server_parent(procs: Procs, pid: int | None) -> int | None:
    """The pid of the Jupyter server process that is ``pid``'s parent, else None.

    ``procs`` is a ``wizard.system.processes`` view (``info`` and ``cmdline``).
    """
    info = procs.info(pid) if pid is not None else None
    ppid = info and info.get("ppid")
    if not ppid or ppid <= 1:
        return None
    argv = procs.cmdline(ppid)
    return ppid if argv and looks_like_server(argv) else None
