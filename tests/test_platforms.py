"""Where the wizard is not at home: other systems, no psutil, an ordinary user."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import need

from wizard.commands import cli
from wizard.report.context import Context

REPO = Path(__file__).resolve().parent.parent


def run_json(monkeypatch):
    for k in list(os.environ):
        if k.startswith(("WIZARD", "COCALC")):
            monkeypatch.delenv(k, raising=False)
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdin=io.StringIO(), stdout=out, stderr=err, environ={"NO_COLOR": "1"})
    code = cli.run(["--no-input", "--json"], ctx)
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
    return code, json.loads(out.getvalue())


def test_without_proc_memory_and_processes_come_from_psutil(monkeypatch):
    """macOS and Windows have no /proc: the host's memory and processes come from psutil."""
    import psutil

    monkeypatch.setattr(sys, "platform", "darwin")
    code, report = run_json(monkeypatch)
    assert code in (0, 1)
    mem = report["memory"]
    assert mem["platform"] == "darwin"
    assert mem["limit_source"] == "host"
    assert mem["cgroup"] is None
    assert mem["limit_bytes"] == psutil.virtual_memory().total
    assert not any("check failed" in e["message"] for e in report["errors"]), report["errors"]


def test_without_proc_and_without_psutil_one_line_says_how_to_install(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil -> ImportError
    code, report = run_json(monkeypatch)
    assert code in (0, 1)
    hints = [e["message"] for e in report["errors"] if "psutil" in e["message"]]
    assert hints and all("pip install psutil" in e for e in hints), report["errors"]
    assert report["memory"]["limit_bytes"] is None


@pytest.fixture
def public_dir():
    """A directory any user can enter (pytest's tmp_path sits under a private one)."""
    path = Path(tempfile.mkdtemp(prefix="wizard-user-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def wait_for_child(session, marker, timeout=30.0):
    """The pid of the process of session ``session`` whose command line holds ``marker``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if os.getsid(int(d.name)) != session:
                    continue
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and b"python" in cmd[0] and any(marker.encode() in c for c in cmd):
                return int(d.name)
        time.sleep(0.05)
    raise AssertionError(f"no process with {marker} started")


def test_as_an_ordinary_user(public_dir):
    """Not root: the kernel log is closed and other users' processes are not ours."""
    runuser = shutil.which("runuser")
    python = shutil.which("python3", path="/usr/bin")
    need(os.geteuid() == 0 and runuser and python, "needs root, runuser and /usr/bin/python3")
    # a copy of the package the ordinary user can read, whatever the checkout's permissions
    code_dir = public_dir / "code"
    shutil.copytree(REPO / "wizard", code_dir / "wizard")
    home = public_dir / "home"
    home.mkdir()
    shutil.chown(home, "nobody")
    # a kernel of the ordinary user's and one of root's (a kernel is a process with -f FILE)
    sleeper = "import time; time.sleep(120)"
    theirs = subprocess.Popen(
        # through a shell: runuser's own command line must not name the kernel's file
        [
            runuser,
            "-u",
            "nobody",
            "--",
            "/bin/sh",
            "-c",
            f'exec {python} -c "{sleeper}" -f {home / "kernel-n.json"}',
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    roots = subprocess.Popen(
        [sys.executable, "-c", sleeper, "-f", str(public_dir / "kernel-root.json")],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        kernel_pid = wait_for_child(theirs.pid, "kernel-n.json")
        done = subprocess.run(
            [runuser, "-u", "nobody", "--", python, "-m", "wizard", "--json", "--no-input"],
            capture_output=True,
            text=True,
            cwd=code_dir,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home), "NO_COLOR": "1"},
            timeout=60,
        )
    finally:
        for p in (theirs, roots):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    report = json.loads(done.stdout)
    assert report["memory"]["limit_bytes"]
    pids = [k["pid"] for k in report["kernels"]]
    assert kernel_pid in pids, pids
    assert roots.pid not in pids
    assert report["kernels"] and all(k["uid"] == 65534 for k in report["kernels"])
    assert not any("check failed" in e for e in report["errors"]), report["errors"]
    status = report["memory"]["oom_log_status"]
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() == "1":
        assert status.startswith("unreadable")


def test_run_says_in_one_line_where_it_works(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "name", "nt")
    err = io.StringIO()
    ctx = Context(stdin=io.StringIO(), stdout=io.StringIO(), stderr=err, environ={})
    assert cli.run(["run", str(tmp_path / "a.ipynb")], ctx) == 2
    assert err.getvalue() == "python -m wizard run: runs on Linux and macOS only\n"
