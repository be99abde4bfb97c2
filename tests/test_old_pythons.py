"""Below the supported Python, `python -m wizard` and wizard.pyz say so in one line, exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need
from test_pyz_commands import pyz  # noqa: F401  (wizard.pyz as the site builds it)

ROOT = Path(__file__).resolve().parent.parent
PYENV = Path.home() / ".pyenv" / "versions"
OLD = ["2.7", "3.6", "3.7", "3.8"]


def interpreter(version):
    found = sorted(PYENV.glob(version + ".*/bin/python"))
    need(found, f"Python {version} under {PYENV}")
    return str(found[-1])


def check(result, version):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(lines) == 1, result.stderr
    assert "needs Python 3.9 or newer" in lines[0]
    assert f"this is Python {version}." in lines[0]


@pytest.mark.parametrize("version", OLD)
def test_python_m_wizard(version):
    python = interpreter(version)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONHOME", None)
    r = subprocess.run(
        [python, "-m", "wizard", "--no-input"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=60,
    )
    check(r, version)


@pytest.mark.parametrize("version", OLD)
def test_pyz(version, pyz):  # noqa: F811
    r = subprocess.run(
        [interpreter(version), str(pyz), "--no-input"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    check(r, version)


def test_supported_python_runs_the_pyz(pyz):  # noqa: F811
    r = subprocess.run(
        [sys.executable, str(pyz), "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "needs Python" not in r.stderr
