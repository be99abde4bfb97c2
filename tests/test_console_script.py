"""The installed ``kernel-wizard`` console script, run for real: every command line it
prints begins with ``kernel-wizard``, however it was started (full path, relative path,
by name from PATH). The script is the one installed beside this interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
SCRIPT = BIN / ("kernel-wizard.exe" if os.name == "nt" else "kernel-wizard")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIZARD")}
    # The installed script, importing this tree's code (as the other command tests do).
    env.update(NO_COLOR="1", PYTHONPATH=str(REPO), **extra)
    return env


def run(argv, cwd=None, env=None):
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env or clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def script():
    need(SCRIPT.is_file(), f"the console script is not installed beside {sys.executable}")
    return SCRIPT


STARTS = {
    "full path": lambda s: ([str(s)], None, None),
    "relative path": lambda s: ([os.path.join(".", s.name)], str(s.parent), None),
    "name on PATH": lambda s: (
        [s.name],
        None,
        clean_env(PATH=os.pathsep.join([str(s.parent), os.environ.get("PATH", "")])),
    ),
}


@pytest.mark.parametrize("how", list(STARTS))
def test_the_commands_it_prints_begin_with_its_name(script, how):
    argv, cwd, env = STARTS[how](script)
    top = run([*argv, "--help"], cwd=cwd, env=env)
    assert top.returncode == 0, top.stderr
    assert "(kernel-wizard halt --help)" in top.stdout
    assert "-m wizard" not in top.stdout

    halt = run([*argv, "halt", "--help"], cwd=cwd, env=env)
    assert halt.returncode == 0, halt.stderr
    assert halt.stdout.startswith("usage: kernel-wizard halt")


def test_python_m_wizard_prints_python_m_wizard():
    # The contrast: the same help from the module names the interpreter.
    proc = run([sys.executable, "-m", "wizard", "--help"])
    python = os.path.basename(sys.executable)
    assert f"({python} -m wizard halt --help)" in proc.stdout
    assert "kernel-wizard halt" not in proc.stdout
