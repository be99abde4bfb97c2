"""jupyter_server's own tests of kernels and sessions, with wizard.server_ext loaded
into every server they start, pass as they do without it.

The tests come from jupyter_server's sdist of the installed version (``pip download
--no-binary``: the wheel has no tests); ``jupyter_server_suite/kernel_wizard_enabled.py``
enables the extension. Slow (a few minutes): ``pytest -m slow tests/test_jupyter_server_suite.py``.
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import need

pytestmark = [pytest.mark.slow, pytest.mark.server]

HERE = Path(__file__).resolve().parent
SUITES = ["tests/services/kernels", "tests/services/sessions"]


def _source(tmp_path):
    import importlib.util

    need(importlib.util.find_spec("pytest_jupyter"), "pytest-jupyter (pip install pytest-jupyter)")
    import jupyter_server

    version = jupyter_server.__version__
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"jupyter_server=={version}",
            "-d",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    need(done.returncode == 0, f"jupyter_server {version}'s sdist: {done.stderr[-300:]}")
    sdist = next(tmp_path.glob("jupyter_server-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    return next(
        p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("jupyter_server-")
    )


def _run(src, plugin):
    env = dict(os.environ, PYTHONPATH=str(HERE / "jupyter_server_suite"))
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--timeout=120",
        *SUITES,
    ]
    if plugin:
        args[3:3] = ["-p", "kernel_wizard_enabled"]
    return subprocess.run(args, cwd=src, env=env, capture_output=True, text=True, timeout=1800)


def test_kernels_and_sessions_suites_pass_with_the_extension(tmp_path):
    src = _source(tmp_path)
    without = _run(src, plugin=False)
    with_it = _run(src, plugin=True)
    assert "kernel-wizard extension loaded: True" in with_it.stdout, with_it.stdout[-3000:]
    tail = lambda r: r.stdout.strip().splitlines()[-1]  # noqa: E731
    print(f"\nwithout: {tail(without)}\nwith:    {tail(with_it)}")
    assert with_it.returncode == without.returncode == 0, with_it.stdout[-5000:]
