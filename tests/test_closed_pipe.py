"""Exit codes survive a reader that goes away (``| head``), for every command that prints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import make_tree

REPO = Path(__file__).resolve().parent.parent

BAD = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "print('x' * 200000)\n1 / 0",
        }
    ],
}


@pytest.fixture
def env(tmp_path):
    root = make_tree(tmp_path / "root")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("WIZARD", "JUPYTER"))}
    e.update(
        NO_COLOR="1",
        PYTHONPATH=str(REPO),
        WIZARD_SYSROOT=str(root),
        HOME="/home/user",
        JUPYTER_RUNTIME_DIR="/run/jupyter",
        WIZARD_DB=str(tmp_path / "history.sqlite3"),
    )
    return e


def exit_codes(args, env, cwd):
    """(full run, reader closed at once, reader closed after 10 bytes)."""
    argv = [sys.executable, "-m", "wizard", *args]
    quiet = {"stderr": subprocess.DEVNULL, "stdin": subprocess.DEVNULL, "env": env, "cwd": cwd}
    full = subprocess.run(argv, stdout=subprocess.DEVNULL, timeout=120, check=False, **quiet)
    codes = [full.returncode]
    for read_first in (0, 10):
        r, w = os.pipe()
        proc = subprocess.Popen(argv, stdout=w, **quiet)
        os.close(w)
        if read_first:
            os.read(r, read_first)
        os.close(r)
        codes.append(proc.wait(timeout=120))
    return tuple(codes)


SIGKILL = ["--banner", "Kernel last terminated by signal SIGKILL."]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--no-input", "-v", *SIGKILL], 1),
        (["--json", "--no-input", *SIGKILL], 1),
        (["--no-input"], 0),
        (["run", "bad.ipynb"], 1),
        (["run", "bad.ipynb", "--json"], 1),
        (["halt", "f0e2"], 2),
        (["halt", "--idle", "1m", "--dry-run", "--json"], 0),
        (["history"], 0),
        (["history", "--json"], 0),
        (["--help"], 0),
        (["run", "--help"], 0),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_a_closed_pipe_keeps_the_exit_code(args, code, env, tmp_path):
    (tmp_path / "bad.ipynb").write_text(json.dumps(BAD))
    assert exit_codes(args, env, tmp_path) == (code, code, code)
