"""The single-file download run by a plain Python: every command it prints is its own.

``python3 wizard.pyz`` on a Python without psutil (a fresh venv without site
packages) must never tell the user to run ``python -m wizard``: the findings, hints,
usage lines, --version and the walk-through all say ``python3 …/wizard.pyz``.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need
from test_cli import make_tree
from test_tty import Terminal

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    """wizard.pyz built the way the site builds its download."""
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        from wizard_site import build_pyz
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    dest = tmp_path_factory.mktemp("pyz") / "wizard.pyz"
    return build_pyz(ROOT / "wizard", dest, "wizard.commands.cli:main")


@pytest.fixture(scope="module")
def plain_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python3 = venv / "bin" / "python3"
    probe = subprocess.run([python3, "-c", "import psutil"], capture_output=True, check=False)
    need(probe.returncode != 0, "a Python without psutil")
    return python3


@pytest.fixture
def env(tmp_path):
    root = make_tree(tmp_path / "root")
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WIZARD", "FORCE_COLOR", "JUPYTER", "COCALC", "PYTHON"))
    }
    e.update(
        NO_COLOR="1",
        LANG="C.UTF-8",
        WIZARD_SYSROOT=str(root),
        HOME="/home/user",
        JUPYTER_RUNTIME_DIR="/run/jupyter",
        WIZARD_DB=str(tmp_path / "history.sqlite3"),
    )
    return e


def only_pyz_forms(text, pyz):
    """Every way of starting the wizard in ``text`` is ``python3 PYZ``."""
    assert "-m wizard" not in text, text
    assert "kernel-wizard " not in text.replace("Kernel wizard", ""), text
    for m in re.finditer(r"(\S*) (\S*wizard\.pyz)", text):
        assert m.group(0).lstrip('`$("') == f"python3 {pyz}", (m.group(0), text)


NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = 1"}],
}

COMMANDS = [
    ["--no-input"],
    ["--no-input", "-v"],
    ["--json", "--no-input"],
    ["--banner", "Kernel last terminated by signal SIGKILL.", "--no-input"],
    ["--banner", "Kernel last terminated by signal SIGSEGV.", "--no-input"],
    ["--version"],
    ["--help"],
    ["bogus"],
    ["halt", "--help"],
    ["halt"],
    ["halt", "f0e2"],
    ["halt", "--idle", "1m", "--dry-run"],
    ["run", "--help"],
    ["run", "missing.ipynb"],
    ["run", "NB"],
    ["watch", "--help"],
    ["history", "--help"],
    ["history"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_the_download_prints_only_its_own_commands(args, pyz, plain_python, env, tmp_path):
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps(NOTEBOOK))
    argv = [str(plain_python), str(pyz), *[str(nb) if a == "NB" else a for a in args]]
    proc = subprocess.run(
        argv,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode in (0, 1, 2), out
    only_pyz_forms(out, pyz)
    if args not in (["--json", "--no-input"], ["halt", "--idle", "1m", "--dry-run"]):
        assert f"python3 {pyz}" in out, out
    if args == ["--version"]:
        assert proc.stdout.startswith(f"python3 {pyz} ")


class PyzTerminal(Terminal):
    """The download on a pseudo-terminal: the walk-through."""

    def __init__(self, argv, env):
        master, slave = os.openpty()
        self.master = master
        from test_tty import _own_terminal

        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=_own_terminal
        )
        os.close(slave)
        self.screen = ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")
def test_the_walk_through_of_the_download_says_its_own_commands(pyz, plain_python, env):
    t = PyzTerminal([str(plain_python), str(pyz)], dict(env, TERM="xterm"))
    t.expect(r"Choose 1-\d")
    t.type("4\n")  # SIGKILL: the memory path, which suggests the recorder
    t.expect(r"\[y/N\]")
    t.type("n\n")
    t.expect(r"Enter to skip")
    t.type("\n")
    code = t.finish(timeout=60)
    assert code in (0, 1), t.screen
    assert "Traceback" not in t.screen
    only_pyz_forms(t.screen, pyz)
    assert f"python3 {pyz}" in t.screen
