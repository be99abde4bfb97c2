"""What ``wizard run`` will do: the notebook's cells, the interpreter, the limits."""

import os
import sys

from wizard.base.failure import UsageError
from wizard.engines.notebook import load_notebook, parse_cells
from wizard.system import interpreters


def choose_python(args, nb):
    import shutil

    if args.python:
        path = args.python
        if os.sep not in path:
            path = shutil.which(path) or path
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise UsageError(f"--python {args.python}: no such interpreter")
        return os.path.abspath(path), "--python"
    if nb["kernel_name"]:
        from wizard.system.sysroot import SysRoot

        path, why = interpreters.kernelspec_python(SysRoot(), nb["kernel_name"])
        if path:
            return path, why
        return sys.executable, f"this Python; {why}"
    return sys.executable, "this Python; the notebook names no kernel"


def make_plan(args, environ):
    from wizard.base import fmt

    path = os.path.abspath(args.notebook)
    nb = load_notebook(args.notebook)
    if nb["language"] and nb["language"].lower() != "python":
        raise UsageError(
            f"{args.notebook}: its kernel runs {nb['language']}; run executes Python code only"
        )
    code = [c for c in nb["cells"] if c["type"] == "code"]
    selected = None
    if args.cells:
        selected = parse_cells(args.cells, len(nb["cells"]))
        code = [c for c in code if c["n"] in selected]
        if not code:
            raise UsageError(f"--cells {args.cells}: no code cell in that range")
    if not code:
        raise UsageError(f"{args.notebook}: the notebook has no code cells to run")
    timeout = memory_limit = None
    if args.timeout is not None:
        try:
            timeout = fmt.parse_duration(args.timeout)
        except ValueError:
            raise UsageError(f"--timeout {args.timeout}: expected e.g. 90, 30s, 5m or 1h") from None
        if timeout <= 0:
            raise UsageError(f"--timeout {args.timeout}: must be more than zero")
    if args.memory_limit is not None:
        try:
            memory_limit = fmt.parse_size(args.memory_limit)
        except ValueError:
            raise UsageError(
                f"--memory-limit {args.memory_limit}: expected e.g. 500M or 2G"
            ) from None
        if memory_limit < (16 << 20):
            raise UsageError(f"--memory-limit {args.memory_limit}: Python needs at least 16M")
    python, why = choose_python(args, nb)
    return {
        "notebook": path,
        "shown": args.notebook,
        "cwd": os.path.dirname(path),
        "python": python,
        "python_source": why,
        "cells": [{"n": c["n"], "source": c["source"]} for c in code],
        "selected": args.cells,
        "timeout": timeout,
        "memory_limit": memory_limit,
    }
