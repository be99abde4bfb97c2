"""``python -m wizard halt`` against a real Jupyter server and real kernel processes.

The command runs as a real ``python -m wizard halt`` process beside the server (its
HOME and runtime dir), with no terminal unless a test gives it a pty; three tests
call the engine in-process instead, where they need to change the world between
the probe and the halt (a reused pid, a token gone wrong) or test pure matching.
Kernels no server owns are plain processes started here. Each test checks what the
user sees (output, exit code) and what happened (the server's /api/kernels, which
processes still run), that the server's token shows up nowhere and that no run
ends in an internal error.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jupyter_fixtures import wait_kernel_ready

from wizard.base import exitcodes, fmt
from wizard.commands.halt import halt_kernels
from wizard.engines import halt_select, halting
from wizard.probes.collect import gather_kernels
from wizard.report.context import Context
from wizard.system import processes

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
MB = 1 << 20
HOLD_60MB = "x = bytearray(60 * 1024 * 1024)\nx[::4096] = b'\\x01' * (len(x) // 4096)"
KEY = "c0nn3ct10n-k3y-n0t-f0r-0utput"


@pytest.fixture
def server(jupyter_server):
    """The module's real Jupyter server (tests/jupyter_fixtures.py)."""
    return jupyter_server


@pytest.fixture
def notebooks(server, request):
    """open(*paths) -> {path: kernel id}: sessions in a directory of this test's own.

    Returns (open, dir): paths are relative to ``dir`` (under the server's root).
    Kernels still running at the end are shut down through the server.
    """
    sub = server.root_dir / request.node.name
    sub.mkdir()
    opened = []

    def open_(*paths):
        ids = {}
        for p in paths:
            (sub / p).parent.mkdir(parents=True, exist_ok=True)
            (sub / p).write_text(
                '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
            )
            ids[p] = server.create_session(f"{request.node.name}/{p}")["kernel"]["id"]
            opened.append(ids[p])
        return ids

    yield open_, sub
    running = server_ids(server)
    for kid in opened:
        if kid in running:
            server.delete_kernel(kid)


@pytest.fixture
def procs(tmp_path):
    """start(argv, **popen) -> Popen; every process started here is killed at the end."""
    started = []

    def start(argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def server_ids(server):
    return {k["id"] for k in server.kernels()}


def alive(pid):
    """A live process (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wizard_env(server, **extra):
    return dict(server.env, PYTHONPATH=str(REPO), NO_COLOR="1", **extra)


def halt(server, *args, cwd=None, timeout=120):
    """Run ``python -m wizard halt ARGS`` beside the server, without a terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "halt", *args],
        env=wizard_env(server),
        cwd=str(cwd or server.base),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for stream in (proc.stdout, proc.stderr):
        assert server.token not in stream
        assert KEY not in stream
        assert "Traceback" not in stream
        assert "internal error" not in stream
    return proc


def wait_for(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def inactive_over(kernels, wanted, seconds):
    """Whether /api/kernels shows no kernel of ``wanted`` busy, each last active over
    ``seconds`` ago."""
    by_id = {k["id"]: k for k in kernels}
    for kid in wanted:
        k = by_id.get(kid) or {}
        stamp = fmt.parse_iso(k.get("last_activity"))
        if k.get("execution_state") in (None, "busy") or stamp is None:
            return False
        if time.time() - stamp <= seconds:
            return False
    return True


def fake_connection_file(path):
    """A connection file as a server writes one (with a key that must never be shown)."""
    info = {
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "ip": "127.0.0.1",
        "key": KEY,
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
    path.write_text(json.dumps(info))
    return path


# ---------------------------------------------------------------------------
# Asking first


def test_without_terminal_or_yes_nothing_changes(server, notebooks):
    open_, sub = notebooks
    ids = open_("a.ipynb", "b.ipynb", "c.ipynb")
    proc = halt(server, "b.ipynb", cwd=sub)
    assert proc.returncode == exitcodes.PROBLEM, proc.stderr
    assert "Will halt 1 kernel(s)" in proc.stdout
    assert "b.ipynb" in proc.stdout and "a.ipynb" not in proc.stdout
    assert "Nothing was halted: there is no terminal to confirm on" in proc.stdout
    assert proc.stdout.rstrip().endswith("(--dry-run only lists them).")
    assert proc.stderr == ""
    assert set(ids.values()) <= server_ids(server)

    dry = halt(server, "--dry-run", "b.ipynb", cwd=sub)
    assert dry.returncode == exitcodes.OK, dry.stderr
    assert "Would halt 1 kernel(s)" in dry.stdout
    assert set(ids.values()) <= server_ids(server)


def test_json_without_yes_never_halts(server, notebooks):
    open_, sub = notebooks
    ids = open_("a.ipynb", "b.ipynb")
    pid_b = server.kernel_pid(ids["b.ipynb"])
    proc = halt(server, "--json", "b.ipynb", cwd=sub)
    assert proc.returncode == exitcodes.PROBLEM, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    assert out["confirmed"] is False
    assert out["note"] == "nothing was halted: --json never asks; add --yes"
    assert out["results"] == [] and out["freed_bytes"] == 0
    assert out["exit_code"] == exitcodes.PROBLEM
    [sel] = out["selected"]
    assert sel["kernel_id"] == ids["b.ipynb"] and sel["pid"] == pid_b
    assert set(ids.values()) <= server_ids(server)
    assert alive(pid_b)


def test_terminal_asks_and_no_means_no(server, notebooks):
    import pty
    import select

    open_, sub = notebooks
    ids = open_("a.ipynb", "b.ipynb")

    def on_terminal(answer):
        master, slave = pty.openpty()
        p = subprocess.Popen(
            [sys.executable, "-m", "wizard", "halt", "b.ipynb"],
            env=wizard_env(server),
            cwd=str(sub),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        out = b""
        end = time.monotonic() + 60
        answered = False
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            if not answered and b"[y/N]" in out:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if p.poll() is not None and not ready:
                break
        p.wait(60)
        os.close(master)
        text = out.decode(errors="replace")
        assert server.token not in text
        return p.returncode, text

    code, text = on_terminal("n")
    assert "Halt this kernel? [y/N]" in text
    assert code == exitcodes.PROBLEM
    assert "Nothing was halted." in text
    assert set(ids.values()) <= server_ids(server)

    code, text = on_terminal("y")
    assert code == exitcodes.OK, text
    assert "shut down by the Jupyter server" in text
    assert ids["b.ipynb"] not in server_ids(server)
    assert ids["a.ipynb"] in server_ids(server)


# ---------------------------------------------------------------------------
# Through the server


def test_halting_one_notebook_removes_exactly_its_kernel(server, notebooks):
    open_, sub = notebooks
    ids = open_("a.ipynb", "b.ipynb", "c.ipynb")
    assert server.execute(ids["b.ipynb"], HOLD_60MB)["status"] == "ok"
    pid_b = server.kernel_pid(ids["b.ipynb"])

    proc = halt(server, "--yes", "b.ipynb", cwd=sub)
    assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
    running = server_ids(server)
    assert ids["b.ipynb"] not in running
    assert {ids["a.ipynb"], ids["c.ipynb"]} <= running
    assert not alive(pid_b)
    assert "shut down by the Jupyter server at http://127.0.0.1:" in proc.stdout
    assert "Halted 1 of 1 kernel(s)" in proc.stdout


def test_json_by_kernel_id_prefix_reports_the_memory_freed(server, notebooks):
    open_, sub = notebooks
    ids = open_("a.ipynb", "b.ipynb")
    assert server.execute(ids["a.ipynb"], HOLD_60MB)["status"] == "ok"
    pid_a = server.kernel_pid(ids["a.ipynb"])

    proc = halt(server, "--json", "--yes", ids["a.ipynb"][:13])
    assert proc.returncode == exitcodes.OK, proc.stderr
    out = json.loads(proc.stdout)
    assert out["schema"] == "kernel-wizard-halt/1"
    [sel] = out["selected"]
    assert sel["pid"] == pid_a and sel["method"] == "server" and sel["problem"] is None
    assert sel["notebook"].endswith(f"{sub.name}/a.ipynb")
    [res] = out["results"]
    assert res["halted"] is True and res["error"] is None
    assert res["freed_bytes"] >= 60 * MB
    assert out["freed_bytes"] == res["freed_bytes"]
    assert ids["a.ipynb"] not in server_ids(server)
    assert ids["b.ipynb"] in server_ids(server)


def test_idle_halts_idle_kernels_and_spares_the_busy_one(server, notebooks, procs, tmp_path):
    from jupyter_client import BlockingKernelClient

    open_, _ = notebooks
    ids = open_("a.ipynb", "b.ipynb", "c.ipynb")
    bystander = procs(["sleep", "60"])
    serverless = procs(
        [sys.executable, "-c", "import time; time.sleep(60)", "-f", str(tmp_path / "kernel-x.json")]
    )
    fake_connection_file(tmp_path / "kernel-x.json")

    kc = BlockingKernelClient(connection_file=str(server.connection_file(ids["a.ipynb"])))
    kc.load_connection_file()
    kc.start_channels()
    try:
        wait_kernel_ready(kc)
        kc.execute("import time; time.sleep(30)")
        wait_for(
            lambda: any(
                k["id"] == ids["a.ipynb"] and k["execution_state"] == "busy"
                for k in server.kernels()
            ),
            what="kernel a to be busy",
        )
        wait_for(
            lambda: inactive_over(server.kernels(), [ids["b.ipynb"], ids["c.ipynb"]], 1.0),
            what="kernels b and c to be inactive over a second",
        )
        proc = halt(server, "--idle", "1s", "--yes")
    finally:
        kc.stop_channels()
    assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
    running = server_ids(server)
    assert ids["a.ipynb"] in running
    assert ids["b.ipynb"] not in running and ids["c.ipynb"] not in running
    assert "busy running code" in proc.stdout
    assert "idle time is unknown" in proc.stdout
    assert str(serverless.pid) in proc.stdout
    assert serverless.poll() is None, "a kernel no server knows is not idle-checkable"
    assert bystander.poll() is None


def test_nothing_idle_is_nothing_to_halt(server, notebooks):
    open_, _ = notebooks
    ids = open_("a.ipynb")
    proc = halt(server, "--idle", "1d", "--yes")
    assert proc.returncode == exitcodes.OK, proc.stderr
    assert "Nothing to halt." in proc.stdout
    assert ids["a.ipynb"] in server_ids(server)


def test_all_except_lists_everything_but_the_spared(server, notebooks):
    open_, sub = notebooks
    ids = open_("a.ipynb", "b.ipynb", "c.ipynb")
    proc = halt(server, "--all-except", "a.ipynb", "--dry-run", "--json", cwd=sub)
    assert proc.returncode == exitcodes.OK, proc.stderr
    out = json.loads(proc.stdout)
    selected = {e["kernel_id"] for e in out["selected"]}
    assert {ids["b.ipynb"], ids["c.ipynb"]} <= selected
    assert ids["a.ipynb"] not in selected
    assert any(s["kind"] == "spared" and s["notebook"].endswith("a.ipynb") for s in out["skipped"])
    assert out["results"] == [] and out["note"] == "dry run: nothing was halted"
    assert set(ids.values()) <= server_ids(server)


# ---------------------------------------------------------------------------
# By signal, when no server owns the kernel


def test_serverless_kernel_is_stopped_by_sigterm(server, procs, tmp_path):
    conn = tmp_path / "kernel-xyz.json"
    env = dict(server.env, JUPYTER_RUNTIME_DIR=str(tmp_path))
    kernel = procs(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bystander = procs(["sleep", "60"])
    wait_for(conn.exists, timeout=60, what="the kernel's connection file")

    proc = halt(server, "--yes", "--grace", "5", str(kernel.pid))
    assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
    assert kernel.wait(10) == -signal.SIGTERM
    assert f"(pid {kernel.pid}): ended on SIGTERM" in proc.stdout
    assert "MiB freed" in proc.stdout
    assert bystander.poll() is None


def test_kernel_ignoring_sigterm_is_killed_after_the_grace_period(server, procs, tmp_path):
    conn = fake_connection_file(tmp_path / "kernel-stubborn.json")
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    stubborn = procs(
        [sys.executable, "-c", code, "-f", str(conn)], stdout=subprocess.PIPE, text=True
    )
    child = int(stubborn.stdout.readline())
    bystander = procs(["sleep", "60"])

    start = time.monotonic()
    proc = halt(server, "--json", "--yes", "--grace", "1", "stubborn")
    took = time.monotonic() - start
    assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
    assert stubborn.wait(10) == -signal.SIGKILL
    assert took >= 1.0
    assert not alive(child), "the kernel's own child goes with it"
    assert bystander.poll() is None
    [res] = json.loads(proc.stdout)["results"]
    assert res["pid"] == stubborn.pid and res["method"] == "signal"
    assert res["signals"] == ["SIGTERM", "SIGKILL"]
    assert res["halted"] is True and res["freed_bytes"] > 0


def test_a_reused_pid_is_not_signalled(procs, tmp_path):
    """The kernels probe saw a kernel; by the time of the signal its pid is another process's."""
    conn = fake_connection_file(tmp_path / "kernel-gone.json")
    victim = procs([sys.executable, "-c", "import time; time.sleep(60)", "-f", str(conn)])
    wait_for(lambda: alive(victim.pid), what="the process")
    info = processes.processes().info(victim.pid)
    entry = {
        "pid": victim.pid,
        "kernel_id": "gone",
        "notebook": None,
        "name": "gone",
        "method": "signal",
        "server_pid": None,
        "server_url": None,
        "started": info["start"] - 100.0,  # the kernel the probe saw started earlier
        "problem": None,
    }
    [res] = halting.halt([entry], {"servers": []}, grace=1)
    assert res["halted"] is True and res["detail"] == "it had already ended"
    assert res["signals"] == []
    assert victim.poll() is None


# ---------------------------------------------------------------------------
# Bad input and failures


def test_unknown_and_ambiguous_targets_are_usage_errors(server, notebooks, tmp_path):
    open_, sub = notebooks
    ids = open_("x/dup-halt.ipynb", "y/dup-halt.ipynb")

    proc = halt(server, "--yes", "no-such-notebook.ipynb")
    assert proc.returncode == exitcodes.USAGE
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "no running kernel of yours matches 'no-such-notebook.ipynb'" in proc.stderr

    proc = halt(server, "--yes", "dup-halt.ipynb", cwd=tmp_path)
    assert proc.returncode == exitcodes.USAGE
    [line] = proc.stderr.splitlines()
    assert "'dup-halt.ipynb' matches the notebooks of" in line
    assert f"{sub.name}/x/dup-halt.ipynb" in line and f"{sub.name}/y/dup-halt.ipynb" in line
    assert set(ids.values()) <= server_ids(server)

    # a path relative to the server's root names one of them, from anywhere
    proc = halt(server, "--yes", f"{sub.name}/y/dup-halt.ipynb", cwd=tmp_path)
    assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
    assert ids["y/dup-halt.ipynb"] not in server_ids(server)
    assert ids["x/dup-halt.ipynb"] in server_ids(server)
    # now the file name alone is enough
    proc = halt(server, "--dry-run", "dup-halt.ipynb", cwd=tmp_path)
    assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
    assert f"{sub.name}/x/dup-halt.ipynb" in proc.stdout

    proc = halt(server, "--yes", "--idle", "soon")
    assert proc.returncode == exitcodes.USAGE
    assert proc.stderr.count("\n") == 1 and "is not a duration" in proc.stderr
    proc = halt(server, "--yes")
    assert proc.returncode == exitcodes.USAGE
    assert proc.stderr.count("\n") == 1


def test_a_server_error_costs_one_line_and_the_others_go_on(
    server, notebooks, procs, tmp_path, monkeypatch, capsys
):
    """The token in the runtime file is wrong at the moment of halting: the server refuses."""
    import io

    open_, _ = notebooks
    ids = open_("a.ipynb")
    conn = fake_connection_file(tmp_path / "kernel-loner.json")
    loner = procs([sys.executable, "-c", "import time; time.sleep(60)", "-f", str(conn)])
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime_dir))
    found = {}

    def both_seen():  # the loner may not have exec'd Python yet
        found["facts"] = facts = gather_kernels()
        found["mine"] = [
            k for k in facts["kernels"] if k["kernel_id"] == ids["a.ipynb"] or k["pid"] == loner.pid
        ]
        return len(found["mine"]) == 2

    wait_for(both_seen, what="both kernels in the probes")
    facts, mine = found["facts"], found["mine"]

    info = json.loads(server.info_file.read_text())
    wrong = "wrong-" + server.token[::-1]
    server.info_file.write_text(json.dumps(dict(info, token=wrong)))
    out = io.StringIO()
    try:
        report = halt_kernels(
            mine, facts["servers"], Context(stdout=out, environ={}), grace=1, yes=True
        )
    finally:
        server.info_file.write_text(json.dumps(info))
    text = out.getvalue()
    assert report["exit_code"] == exitcodes.PROBLEM
    by_pid = {r["pid"]: r for r in report["results"]}
    failed = by_pid[mine[0]["pid"] if mine[0]["pid"] != loner.pid else mine[1]["pid"]]
    assert failed["halted"] is False
    assert "the server refused its own token (HTTP 40" in failed["error"]
    assert by_pid[loner.pid]["halted"] is True
    assert loner.wait(10) == -signal.SIGTERM
    assert ids["a.ipynb"] in server_ids(server)
    assert "Halted 1 of 2 kernel(s)" in text and "1 could not be halted." in text
    assert wrong not in text and server.token not in text
    assert wrong not in json.dumps(report) and server.token not in json.dumps(report)


def test_a_server_started_from_a_kernel_is_left_running(server, procs, tmp_path):
    conn = fake_connection_file(tmp_path / "kernel-launcher.json")
    code = (
        "import subprocess, sys, time\n"
        "srv = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)',"
        " '-m', 'jupyter_server'])\n"
        "print(srv.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    kernel = procs([sys.executable, "-c", code, "-f", str(conn)], stdout=subprocess.PIPE, text=True)
    child_server = int(kernel.stdout.readline())
    try:
        proc = halt(server, "--yes", "--grace", "1", "launcher")
        assert proc.returncode == exitcodes.OK, proc.stdout + proc.stderr
        assert kernel.wait(10) == -signal.SIGTERM
        assert alive(child_server), "a Jupyter server is never signalled"
    finally:
        if alive(child_server):
            os.kill(child_server, signal.SIGKILL)


def test_how_targets_are_matched():
    """Pure matching rules, on kernels as the probes describe them."""

    def kernel(pid, kid, notebook):
        return {"pid": pid, "kernel_id": kid, "notebook": notebook, "server_pid": 7}

    srv = {
        "servers": [
            {
                "pid": 7,
                "root_dir": "/home/u/work",
                "reachable": True,
                "sessions": [{"path": "hw/a.ipynb", "kernel_id": "1234abcd-0000"}],
            }
        ]
    }
    ks = [
        kernel(101, "1234abcd-0000", None),  # notebook known from the server's session only
        kernel(102, "12ffabcd-1111", "/home/u/work/hw/b.ipynb"),
        kernel(103, "9999abcd-2222", "/home/u/other/b.ipynb"),
    ]

    def pids(t):
        return [k["pid"] for k in halt_select.resolve(t, ks, srv)]

    assert pids("101") == [101]
    assert pids("a.ipynb") == [101]
    assert pids("hw/a.ipynb") == [101]
    assert pids("/home/u/work/hw/a.ipynb") == [101]
    assert pids("hw/b.ipynb") == [102]
    assert pids("9999a") == [103]
    assert pids("1234abcd-0000") == [101]
    with pytest.raises(halt_select.TargetError, match="matches the notebooks of 2 kernels"):
        halt_select.resolve("b.ipynb", ks, srv)
    more = [*ks, kernel(104, "12ffeeee-3333", None)]
    with pytest.raises(halt_select.TargetError, match="matches the kernel ids of 2 kernels"):
        halt_select.resolve("12ff", more, srv)
    with pytest.raises(halt_select.TargetError, match="no running kernel of yours matches"):
        halt_select.resolve("12f", more, srv)  # too short to be taken for an id
    # digits are a pid, never the start of an id: a mistyped pid names nothing
    with pytest.raises(halt_select.TargetError, match="no kernel of yours has pid 1234"):
        halt_select.resolve("1234", ks, srv)
    with pytest.raises(halt_select.TargetError, match="no running kernel of yours matches"):
        halt_select.resolve("c.ipynb", ks, srv)
