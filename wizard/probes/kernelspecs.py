"""Installed kernelspecs: ``kernels/*/kernel.json`` in every Jupyter data dir.

Dirs are searched as jupyter_client does (``JUPYTER_PATH``, then user and
environment in jupyter_core 5's order, then system dirs, then IPython's); the first
dir holding a name wins, and names are lowercased. A spec is ``ok`` when its
``kernel.json`` parses, has an ``argv``, and ``argv[0]`` names an executable.
As jupyter_client does, ``python``/``python3``/``python3.N`` stand for the Python
running the server, and ipykernel provides a ``python3`` spec when none is installed.

With ``deep=True`` each interpreter is run under one shared timeout: Python kernels
with ``-c "import MODULE"`` (the module the spec runs with ``-m``, else ipykernel),
others with ``--version``; a spec whose check fails is then not ``ok``, and its
``problem`` is what the check found.
"""

import os
import sys

from wizard.system import interpreters

SPEC_MAX = 1 << 20


def probe(root, deep=False, timeout=5.0):
    dirs = []
    for d in interpreters.kernelspec_dirs():
        if d not in dirs:
            dirs.append(d)
    result = {"kernelspecs": [], "dirs": dirs, "errors": []}
    seen = set()
    for d in dirs:
        try:
            entries = sorted(root.listdir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            result["errors"].append(f"cannot list kernelspec dir {d}: {e.strerror or e}")
            continue
        for entry in entries:
            spec_dir = os.path.join(d, entry)
            if not os.path.isfile(root.path(os.path.join(spec_dir, "kernel.json"))):
                continue
            name = entry.lower()
            if name not in seen:
                seen.add(name)
                result["kernelspecs"].append(_read_spec(root, name, spec_dir))
    if "python3" not in seen:
        native = _native_spec()
        if native:
            result["kernelspecs"].append(native)
    if deep:
        _deep(root, result["kernelspecs"], timeout)
        for spec in result["kernelspecs"]:
            # A spec that does not start is broken, whatever its kernel.json looks like.
            if spec["ok"] and spec["deep"]["ok"] is False:
                spec["ok"] = False
                spec["problem"] = spec["deep"]["detail"]
    for spec in result["kernelspecs"]:
        del spec["_argv"]  # only the deep check needs the whole command line
    return result


def _spec(name, spec_dir):
    return {
        "name": name,
        "dir": spec_dir,
        "display_name": None,
        "language": None,
        "argv0": None,
        "argv0_path": None,
        "ok": False,
        "problem": None,
        "deep": None,
        "_argv": None,
    }


def _read_spec(root, name, spec_dir):
    import json

    spec = _spec(name, spec_dir)
    path = os.path.join(spec_dir, "kernel.json")
    try:
        data = root.read_bytes(path, SPEC_MAX + 1)
    except OSError as e:
        spec["problem"] = f"kernel.json cannot be read: {e.strerror or e}"
        return spec
    if len(data) > SPEC_MAX:
        spec["problem"] = "kernel.json is too large"
        return spec
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        spec["problem"] = "kernel.json is not valid JSON"
        return spec
    if not isinstance(info, dict):
        spec["problem"] = "kernel.json is not a JSON object"
        return spec
    for key in ("display_name", "language"):
        if isinstance(info.get(key), str):
            spec[key] = info[key]
    argv = info.get("argv")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv) and argv[0]):
        spec["problem"] = "argv missing"
        return spec
    spec["argv0"] = argv[0]
    spec["_argv"] = argv
    spec["argv0_path"], spec["problem"] = interpreters.resolve(root, argv[0], spec_dir)
    spec["ok"] = spec["problem"] is None
    return spec


def _native_spec():
    import importlib.util

    try:
        found = importlib.util.find_spec("ipykernel")
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin:
        return None
    spec = _spec("python3", os.path.join(os.path.dirname(found.origin), "resources"))
    spec.update(
        display_name="Python 3 (ipykernel)",
        language="python",
        argv0=sys.executable,
        argv0_path=sys.executable,
        ok=True,
        _argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    )
    return spec


# ---------------------------------------------------------------------------
# --deep


def _check_command(spec, argv, exe):
    """``(command, what)`` to run, or ``(None, why not)``."""
    base = os.path.basename(exe).lower()
    python_like = base.startswith("python") or (spec.get("language") or "").lower() == "python"
    if python_like and base.startswith(("python", "ipython", "pypy")):
        module = "ipykernel"
        if "-m" in argv[1:]:
            i = argv.index("-m", 1)
            if i + 1 < len(argv):
                module = argv[i + 1].split(".")[0]
        if module == "ipykernel_launcher":
            module = "ipykernel"
        if not module.isidentifier():
            return None, f"not checked: odd module name {module!r}"
        return [exe, "-c", f"import {module}"], f"import {module}"
    return [exe, "--version"], f"{os.path.basename(exe)} --version"


def _deep(root, specs, timeout):
    import subprocess
    import time

    deadline = time.monotonic() + timeout
    running = []
    for spec in specs:
        argv = spec["_argv"]
        if not spec["ok"] or not spec["argv0_path"] or not argv:
            why = spec["problem"] or "no interpreter"
            spec["deep"] = {"ok": False, "detail": f"not run: {why}"}
            continue
        exe = spec["argv0_path"]
        cmd, what = _check_command(spec, argv, root.path(exe))
        if cmd is None:  # unknown, not broken: None keeps it out of the findings
            spec["deep"] = {"ok": None, "detail": what}
            continue
        try:
            p = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            spec["deep"] = {"ok": False, "detail": f"cannot run {exe}: {e.strerror or e}"}
            continue
        running.append((spec, p, what, exe))
    for spec, p, what, exe in running:
        try:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            spec["deep"] = {"ok": False, "detail": f"{what}: no answer within {timeout:g} s"}
            continue
        if p.returncode == 0:
            first = _lines(out) or _lines(err)
            detail = f"{what}: works" + (f" ({first[0]})" if first and "version" in what else "")
        else:
            last = _lines(err) or _lines(out)
            tail = last[-1] if last else "no output"
            detail = f"{what} failed (exit {p.returncode}): {tail}"
        if interpreters.is_python_name(spec["argv0"] or ""):
            detail += f"; checked with {exe}"
        spec["deep"] = {"ok": p.returncode == 0, "detail": detail}


def _lines(data):
    text = data[-8192:].decode("utf-8", "replace")
    return [line.strip()[:300] for line in text.splitlines() if line.strip()]
