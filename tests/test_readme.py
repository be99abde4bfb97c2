"""The README's commands: the quick start works on a stock Python, CI runs its test line."""

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import need

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def console_blocks(text):
    return [b.strip().splitlines() for b in re.findall(r"```console\n(.*?)```", text, re.S)]


def test_ci_runs_exactly_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    tests = next(b for b in console_blocks(README) if any("tox" in line for line in b))
    (command,) = tests
    assert command in ci


def test_the_first_command_works_on_a_stock_python_from_the_checkout(tmp_path):
    first = console_blocks(README)[0][0]
    assert first == "python3 -m wizard"
    venv = tmp_path / "stock"  # a Python with nothing but the standard library
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    need(sys.platform.startswith("linux"), "Linux (off Linux the wizard needs psutil)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WIZARD"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1")
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [*first.split(), "--no-input"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.startswith("Kernel wizard ")
    assert "Traceback" not in proc.stderr
