"""The kernelspecs probe, checked against jupyter_core and jupyter_client themselves."""

import json
import os
import sys
import time

import pytest

from wizard.probes import kernelspecs
from wizard.system import jupyter_paths
from wizard.system.sysroot import SysRoot


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Two JUPYTER_PATH dirs, a user data dir, an IPython dir, a bin dir on PATH."""
    d = {k: tmp_path / k for k in ("jp1", "jp2", "user", "ipython", "bin", "home")}
    for p in d.values():
        p.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", f"{d['jp1']}{os.pathsep}{d['jp2']}")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(d["user"]))
    monkeypatch.setenv("IPYTHONDIR", str(d["ipython"]))
    monkeypatch.setenv("HOME", str(d["home"]))
    monkeypatch.setenv("PATH", f"{d['bin']}{os.pathsep}{os.environ['PATH']}")
    for var in ("JUPYTER_PREFER_ENV_PATH", "JUPYTER_PLATFORM_DIRS", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    return d


def need_module(name):
    import importlib.util

    from conftest import need

    need(importlib.util.find_spec(name) is not None, f"{name} is not installed")


def spec(base, name, argv=None, raw=None, **extra):
    d = base / "kernels" / name
    d.mkdir(parents=True)
    if raw is not None:
        (d / "kernel.json").write_bytes(raw)
    else:
        info = {"display_name": f"Kernel {name}", "language": "python", **extra}
        if argv is not None:
            info["argv"] = argv
        (d / "kernel.json").write_text(json.dumps(info))
    return d


def script(path, body, mode=0o755):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return str(path)


def mine(result, tmp_path):
    return {s["name"]: s for s in result["kernelspecs"] if s["dir"].startswith(str(tmp_path))}


def test_specs_and_their_problems(dirs, tmp_path):
    good = script(dirs["bin"] / "goodkernel", "exit 0")
    noexec = script(dirs["bin"] / "noexec", "exit 0", mode=0o644)
    spec(dirs["jp1"], "Good", [good, "-f", "{connection_file}"], language="python")
    spec(dirs["jp2"], "good", ["/elsewhere/python"])  # the first dir wins
    spec(dirs["jp1"], "gone", ["/nonexistent/venv/bin/python", "-m", "ipykernel_launcher"])
    spec(dirs["jp1"], "noexec", [noexec])
    spec(dirs["jp1"], "badjson", raw=b'{"argv": ["python",')
    spec(dirs["jp1"], "binary", raw=bytes(range(256)))
    spec(dirs["jp1"], "noargv")
    spec(dirs["jp1"], "emptyargv", [])
    spec(dirs["user"], "onpath", ["goodkernel", "{connection_file}"], language="R")
    spec(dirs["user"], "notonpath", ["no-such-kernel-binary-xyz"])
    res = spec(dirs["ipython"], "res", ["{resource_dir}/run.sh"])
    script(res / "run.sh", "exit 0")
    spec(dirs["jp2"], "pyname", ["python3", "-m", "ipykernel_launcher"])
    (dirs["jp1"] / "kernels" / "nojson").mkdir()

    result = kernelspecs.probe(SysRoot())
    got = mine(result, tmp_path)
    assert set(got) == {
        "good", "gone", "noexec", "badjson", "binary", "noargv", "emptyargv", "onpath",
        "notonpath", "res", "pyname",
    }  # fmt: skip
    g = got["good"]
    assert (g["dir"], g["argv0"], g["argv0_path"]) == (
        str(dirs["jp1"] / "kernels/Good"),
        good,
        good,
    )
    assert (g["ok"], g["problem"], g["deep"], g["display_name"]) == (
        True,
        None,
        None,
        "Kernel Good",
    )
    assert got["gone"]["problem"] == "interpreter /nonexistent/venv/bin/python not found"
    assert got["noexec"]["problem"] == f"interpreter {noexec} is not executable"
    assert got["badjson"]["problem"] == "kernel.json is not valid JSON"
    assert got["binary"]["problem"] == "kernel.json is not valid JSON"
    assert got["noargv"]["problem"] == got["emptyargv"]["problem"] == "argv missing"
    assert (got["onpath"]["argv0_path"], got["onpath"]["ok"]) == (good, True)
    assert got["notonpath"]["problem"] == "interpreter no-such-kernel-binary-xyz not found on PATH"
    assert got["res"]["argv0"] == "{resource_dir}/run.sh"
    assert got["res"]["argv0_path"] == str(res / "run.sh") and got["res"]["ok"]
    assert got["pyname"]["ok"] and os.access(got["pyname"]["argv0_path"], os.X_OK)
    for name in ("gone", "noexec", "badjson", "binary", "noargv", "notonpath"):
        assert got[name]["ok"] is False, name
    assert result["errors"] == []
    assert result["dirs"][:2] == [str(dirs["jp1"] / "kernels"), str(dirs["jp2"] / "kernels")]
    assert result["dirs"][-1] == str(dirs["ipython"] / "kernels")


def test_same_specs_as_jupyter_client(dirs, tmp_path):
    need_module("jupyter_client")
    from jupyter_client.kernelspec import KernelSpecManager

    spec(dirs["jp2"], "Zeta", ["python3"])
    spec(dirs["user"], "zeta", ["python3"])
    spec(dirs["user"], "alpha", ["python3"])
    spec(dirs["ipython"], "ipy", ["python3"])
    theirs = KernelSpecManager().find_kernel_specs()
    ours = {s["name"]: s["dir"] for s in kernelspecs.probe(SysRoot())["kernelspecs"]}
    assert ours == theirs


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"JUPYTER_PREFER_ENV_PATH": "1"},
        {"JUPYTER_PREFER_ENV_PATH": "0"},
        {"JUPYTER_PATH": ""},
        {"XDG_DATA_HOME": "/xdg", "JUPYTER_DATA_DIR": ""},
        {"JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_DATA_DIR": ""},
    ],
)
def test_paths_match_jupyter_core(dirs, monkeypatch, env):
    need_module("jupyter_core")
    from jupyter_core import paths

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert jupyter_paths.jupyter_path("kernels") == paths.jupyter_path("kernels")
    assert jupyter_paths.data_dir() == paths.jupyter_data_dir()
    assert jupyter_paths.runtime_dir() == paths.jupyter_runtime_dir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/run/x")
    assert jupyter_paths.runtime_dir() == paths.jupyter_runtime_dir() == "/run/x"


def test_native_python3_when_none_installed(dirs, tmp_path, monkeypatch):
    need_module("ipykernel")
    # no env dir (the venv holds a python3 spec): only our dirs are searched
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(jupyter_paths, "system_dirs", lambda: [str(tmp_path / "sys")])
    result = kernelspecs.probe(SysRoot())
    (py,) = [s for s in result["kernelspecs"] if s["name"] == "python3"]
    assert py["dir"].endswith(os.path.join("ipykernel", "resources"))
    assert (py["argv0"], py["ok"], py["language"]) == (sys.executable, True, "python")
    spec(dirs["user"], "Python3", ["python3"])
    (py,) = [s for s in kernelspecs.probe(SysRoot())["kernelspecs"] if s["name"] == "python3"]
    assert py["dir"] == str(dirs["user"] / "kernels" / "Python3")


def test_deep(dirs, tmp_path):
    b = dirs["bin"]
    spec(dirs["jp1"], "py", [sys.executable, "-m", "ipykernel_launcher", "-f", "{c}"])
    spec(dirs["jp1"], "pybroken", [sys.executable, "-m", "no_such_module_xyz.app"])
    spec(dirs["jp1"], "pyodd", [sys.executable, "-m", "os;print(1)"])
    spec(dirs["jp1"], "r", [script(b / "R", "echo 'R version 4.3.1 (fake)'")], language="R")
    spec(dirs["jp1"], "crash", [script(b / "crash", "echo boom >&2; exit 3")], language="c")
    spec(dirs["jp1"], "hang", [script(b / "hang", "exec sleep 30")], language="c")
    spec(dirs["jp1"], "gone", ["/nonexistent/python"])
    t = time.monotonic()
    got = mine(kernelspecs.probe(SysRoot(), deep=True, timeout=3.0), tmp_path)
    assert time.monotonic() - t < 5.0
    deep = {name: s["deep"] for name, s in got.items()}
    need_module("ipykernel")
    assert deep["py"] == {"ok": True, "detail": "import ipykernel: works"}
    assert deep["pybroken"]["ok"] is False
    assert "No module named 'no_such_module_xyz'" in deep["pybroken"]["detail"]
    assert deep["pyodd"] == {"ok": None, "detail": "not checked: odd module name 'os;print(1)'"}
    assert deep["r"] == {"ok": True, "detail": "R --version: works (R version 4.3.1 (fake))"}
    assert deep["crash"] == {"ok": False, "detail": "crash --version failed (exit 3): boom"}
    assert deep["hang"] == {"ok": False, "detail": "hang --version: no answer within 3 s"}
    assert deep["gone"] == {
        "ok": False,
        "detail": "not run: interpreter /nonexistent/python not found",
    }


def test_fixture_root(tmp_path, monkeypatch):
    for var in ("JUPYTER_PATH", "JUPYTER_PLATFORM_DIRS", "JUPYTER_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "/home/u")
    spec(tmp_path / "usr/share/jupyter", "sys1", ["/opt/k/bin/kern"])
    spec(tmp_path / "usr/local/share/jupyter", "sys2", ["/opt/k/bin/missing"])
    spec(tmp_path / "home/u/.local/share/jupyter", "user1", ["/opt/k/bin/kern"])
    (tmp_path / "opt/k/bin").mkdir(parents=True)
    script(tmp_path / "opt/k/bin/kern", "exit 0")
    got = {s["name"]: s for s in kernelspecs.probe(SysRoot(tmp_path))["kernelspecs"]}
    assert got["sys1"]["dir"] == "/usr/share/jupyter/kernels/sys1"
    assert (got["sys1"]["ok"], got["sys1"]["argv0_path"]) == (True, "/opt/k/bin/kern")
    assert got["sys2"]["problem"] == "interpreter /opt/k/bin/missing not found"
    assert got["user1"]["dir"] == "/home/u/.local/share/jupyter/kernels/user1"
