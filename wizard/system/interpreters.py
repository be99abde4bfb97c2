"""Which interpreter a kernelspec starts: the one resolver ``--deep``, the kernelspecs
probe and ``wizard run`` share.

A spec's ``argv[0]`` is a path, or a bare name looked up on PATH. ``python``,
``python3`` and ``python3.N`` are special: jupyter_client replaces them with the
server's own Python, which is best guessed as the one of the environment the spec
is installed in (``PREFIX/share/jupyter/kernels/NAME``), else this one.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.system.sysroot import SysRoot

PYTHON_NAMES = ("python", "python3")


def is_python_name(exe: str) -> bool:
    if exe in PYTHON_NAMES:
        return True
    return exe.startswith("python3.") and exe[8:].isdigit()


def env_python(root: SysRoot, spec_dir: str) -> str:
    """The Python of the environment a spec is installed in, else this Python."""
    parts = os.path.normpath(spec_dir).split(os.sep)
    if len(parts) > 4 and parts[-4:-1] == ["share", "jupyter", "kernels"]:
        prefix = os.sep.join(parts[:-4]) or os.sep
        for rel in (("bin", "python3"), ("bin", "python"), ("python.exe",)):
            candidate = os.path.join(prefix, *rel)
            if os.access(root.path(candidate), os.X_OK):
                return candidate
    return sys.executable


def resolve(root: SysRoot, argv0: str, spec_dir: str) -> tuple[str | None, str | None]:
    """``(path, problem)`` of a spec's ``argv[0]``: problem is None when it can start."""
    import shutil

    exe = argv0.replace("{resource_dir}", spec_dir).replace("{prefix}", sys.prefix)
    if "/" in exe or (os.sep != "/" and os.sep in exe):
        real = root.path(exe) if os.path.isabs(exe) else exe
        if not os.path.exists(real):
            return None, f"interpreter {exe} not found"
        if os.path.isdir(real) or not os.access(real, os.X_OK):
            return exe, f"interpreter {exe} is not executable"
        return exe, None
    if is_python_name(exe):
        return env_python(root, spec_dir), None
    if root.real:
        found = shutil.which(exe)
    else:
        dirs = os.environ.get("PATH", "").split(os.pathsep)
        found = shutil.which(exe, path=os.pathsep.join(root.path(d) for d in dirs if d))
        if found and found.startswith(root.root + os.sep):
            found = found[len(root.root) :]
    if found:
        return found, None
    return None, f"interpreter {exe} not found on PATH"


def kernelspec_dirs() -> list[str]:
    """Every directory that may hold kernelspecs, in Jupyter's order."""
    from wizard.system import jupyter_paths

    return [
        *jupyter_paths.jupyter_path("kernels"),
        os.path.join(jupyter_paths.ipython_dir(), "kernels"),
    ]


def kernelspec_python(root: SysRoot, name: str) -> tuple[str | None, str]:
    """``(path, why)`` of the interpreter the kernelspec ``name`` starts; (None, why) if none."""
    import json

    for d in kernelspec_dirs():
        spec_dir = os.path.join(d, name)
        spec_file = os.path.join(spec_dir, "kernel.json")
        try:
            with open(root.path(spec_file), encoding="utf-8") as f:
                spec = json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None, f"kernelspec {name} ({spec_file}) cannot be read"
        argv = spec.get("argv") if isinstance(spec, dict) else None
        if not argv or not isinstance(argv, list) or not isinstance(argv[0], str):
            return None, f"kernelspec {name} ({spec_file}) has no command"
        path, problem = resolve(root, argv[0], spec_dir)
        if problem or not path:
            return None, f"kernelspec {name}: {problem}"
        return path, f"kernelspec {name}"
    return None, f"no kernelspec named {name}"
