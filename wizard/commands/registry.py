"""The wizard's commands: name -> (module, one-line description).

The main report is the module ``wizard.commands.diagnose``; each sub-command's module
has ``main(argv, ctx) -> int`` and ``build_parser()`` (see ``wizard.commands.base``).
Modules are imported only when their command runs: ``--help`` imports no probe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

MAIN = "wizard.commands.diagnose"
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


def available_commands() -> dict[str, tuple[str, str]]:
    """Sub-commands whose module is present (the single-file build carries them all)."""
    import importlib.util

    return {
        name: spec
        for name, spec in COMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


def module_of(name: str | None) -> ModuleType:
    """The module of a command: ``None`` or "" is the main report."""
    import importlib

    return importlib.import_module(COMMANDS[name][0] if name else MAIN)
