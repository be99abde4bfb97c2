"""The wizard on a real terminal (a pseudo-terminal): it asks, and the answers steer it."""

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need
from test_cli import make_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _linux_pty():
    need(sys.platform.startswith("linux"), "needs a Linux pty")


def _own_terminal():
    # A session of its own with the pty as its controlling terminal, so that Ctrl-C
    # typed there reaches it as SIGINT, as in a real terminal.
    import fcntl
    import signal
    import termios

    # a run started from a non-interactive shell inherits SIGINT ignored: undo that
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``python -m wizard`` with a pty as its stdin, stdout and stderr."""

    def __init__(self, *args, env=None):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wizard", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=REPO,
            env=env,
            preexec_fn=_own_terminal,
        )
        os.close(slave)
        self.screen = ""

    def expect(self, pattern, timeout=30):
        end = time.monotonic() + timeout
        while not re.search(pattern, self.screen):
            left = end - time.monotonic()
            assert left > 0, f"no {pattern!r} on the screen:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the other side closed
                    data = b""
                if not data:
                    assert re.search(pattern, self.screen), self.screen
                    return
                self.screen += data.decode("utf-8", "replace")

    def type(self, text):
        os.write(self.master, text.encode())

    def finish(self, timeout=30):
        code = self.proc.wait(timeout=timeout)
        try:
            while True:
                data = os.read(self.master, 65536)
                if not data:
                    break
                self.screen += data.decode("utf-8", "replace")
        except OSError:
            pass
        os.close(self.master)
        return code


NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = 1"},
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "source": "import ctypes\nctypes.string_at(0)",
        },
    ],
}


@pytest.fixture
def env(tmp_path):
    """A known system: the fixture tree of test_cli (2 GiB cgroup, no kill, no kernel)."""
    root = make_tree(tmp_path / "root")
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WIZARD", "FORCE_COLOR", "JUPYTER", "COCALC"))
    }
    e.update(
        TERM="xterm",
        NO_COLOR="1",
        LANG="C.UTF-8",
        WIZARD_SYSROOT=str(root),
        HOME="/home/user",
        JUPYTER_RUNTIME_DIR="/run/jupyter",
    )
    return e


def test_terminal_walk_through_for_a_segfault(env, tmp_path):
    notebook = tmp_path / "crash.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))
    t = Terminal(env=env)
    t.expect(r"Step 1 of 4: What did the message say\?")
    t.expect(r"Choose 1-\d")
    t.type("2\n")  # Kernel last terminated by signal SIGSEGV.
    t.expect(r"SIGSEGV")
    t.expect(r"Did you restart, shut down or interrupt the kernel just before\? \[y/N\]")
    t.type("n\n")
    t.expect(r"Step 3 of 4: Is it memory\?")
    t.expect(r"Step 4 of 4: Something else\?")
    t.expect(r"Notebook to run outside Jupyter \(Enter to skip\): ")
    t.type(f"{notebook}\n")  # the site's step 1, done for the user
    code = t.finish(timeout=60)
    assert "native code in a library crashed" in t.screen
    assert "#kernel-terminated-eliminate-jupyter" in t.screen
    run_part = t.screen.split("Notebook to run outside Jupyter", 1)[1]
    assert "SIGSEGV" in run_part and "cell 2" in run_part.lower()
    assert "Traceback" not in t.screen
    assert code == 1


def test_terminal_intentional_restart_ends_calmly(env):
    t = Terminal(env=env)
    t.expect(r"Choose 1-\d")
    t.type("\n")  # I don't know
    t.expect(r"\[y/N\]")
    t.type("y\n")
    code = t.finish()
    assert "nothing is wrong" in t.screen
    assert code == 0


def test_no_input_on_a_terminal_never_asks(env):
    t = Terminal("--no-input", env=env)
    code = t.finish()
    assert "Choose" not in t.screen and "[y/N]" not in t.screen
    # the fixture: 300 MiB of a 2 GiB cgroup, no kill, 10 of 100 processes, no kernel
    assert "Memory: 300 MiB of 2.0 GiB used (15%), limit from cgroup v2 /job" in t.screen
    assert "Out-of-memory kills: 0 kill(s) in this cgroup" in t.screen
    assert "Processes: 10 of 100 processes allowed" in t.screen
    assert "Open kernels: no kernel running" in t.screen
    assert "No problem found." in t.screen
    assert code == 0


def test_ctrl_c_at_a_question_exits_130(env):
    t = Terminal(env=env)
    t.expect(r"Choose 1-\d")
    t.type("\x03")  # the terminal turns it into SIGINT for the wizard
    code = t.finish()
    assert code == 130
    assert "interrupted" in t.screen
    assert "Traceback" not in t.screen
