"""Two real Jupyter servers of one user, sharing a runtime dir and a history database:
each server's halt, deaths and plan concern its own kernels only; a starting kernel and
one active a moment ago are never halted."""

import json
import os
import signal
import sys
import time

import pytest
from jupyter_fixtures import JupyterServer, need_jupyter

pytestmark = pytest.mark.server

THRESHOLD = 5  # KernelWizard.halt_idle_after, its smallest allowed value
ENABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": True}'


def start(base, runtime, db, kernels_dir=None):
    server = JupyterServer(
        base,
        extra_args=[ENABLE, f"--KernelWizard.halt_idle_after={THRESHOLD}"],
        env={
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "WIZARD_DB": str(db),
            "WIZARD_WATCH_INTERVAL": "0.3",
        },
    )
    server.runtime_dir = runtime
    if kernels_dir:
        server.env["JUPYTER_PATH"] = str(kernels_dir)
    return server.start()


def never_ready_kernelspec(path):
    """A kernelspec whose kernel never answers: the server keeps it 'starting'."""
    spec = path / "kernels" / "never-ready"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(600)", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "never"}))
    return path


def wait_for(what, check, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def state(server, kid):
    for k in server.kernels():
        if k["id"] == kid:
            return k["execution_state"]
    return None


def test_each_server_halts_and_reports_its_own_kernels_only(tmp_path):
    need_jupyter()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    db = tmp_path / "history.sqlite3"
    a = start(tmp_path / "a", runtime, db, never_ready_kernelspec(tmp_path / "specs"))
    b = start(tmp_path / "b", runtime, db)
    try:
        # the same basename in both servers: names must not be confused
        a_idle = a.create_session("work/idle.ipynb")["kernel"]["id"]
        a_recent = a.create_session("recent.ipynb")["kernel"]["id"]
        b_idle = b.create_session("idle.ipynb")["kernel"]["id"]
        b_crash = b.create_session("crash.ipynb")["kernel"]["id"]
        for server, kid in ((a, a_idle), (a, a_recent), (b, b_idle), (b, b_crash)):
            server.execute(kid, "pass")  # the server sees it busy, then idle
            wait_for(f"{kid} idle", lambda s=server, k=kid: state(s, k) == "idle")
        body = {"path": "slow.ipynb", "name": "slow.ipynb", "type": "notebook"}
        a_starting = a.api("POST", "api/sessions", dict(body, kernel={"name": "never-ready"}))
        a_starting = a_starting["kernel"]["id"]
        time.sleep(THRESHOLD + 1)
        a.execute(a_recent, "x = 1")  # active a moment ago

        plan = a.api("GET", "api/kernel-wizard/halt-idle")
        halt = {k["kernel_id"]: k for k in plan["halt"]}
        left = {k["kernel_id"]: k for k in plan["left"]}
        assert set(halt) == {a_idle}, plan
        assert halt[a_idle]["path"] == "work/idle.ipynb"
        assert halt[a_idle]["rss_bytes"] > 10 << 20
        assert halt[a_idle]["idle_seconds"] >= THRESHOLD
        assert plan["freed_bytes"] == halt[a_idle]["rss_bytes"]
        assert set(left) == {a_recent, a_starting}, plan
        assert left[a_recent]["reason"].startswith("active"), left
        assert left[a_starting]["reason"] == "starting", left

        # confirm everything, the other server's kernels too: only the planned one goes
        ids = [a_idle, a_recent, a_starting, b_idle, b_crash]
        got = a.api("POST", "api/kernel-wizard/halt-idle", {"kernel_ids": ids})
        assert [k["kernel_id"] for k in got["halted"]] == [a_idle], got
        assert {k["kernel_id"] for k in got["kept"]} == {a_recent, a_starting}
        assert set(got["gone"]) == {b_idle, b_crash}
        assert {k["id"] for k in a.kernels()} == {a_recent, a_starting}
        assert {k["id"] for k in b.kernels()} == {b_idle, b_crash}

        # a death in b: b tells of it, a does not
        os.kill(b.kernel_pid(b_crash), signal.SIGSEGV)

        def b_death():
            found = b.api("GET", "api/kernel-wizard/deaths")["deaths"]
            return [d for d in found if d["kernel_id"] == b_crash]

        d = wait_for("the death in b", b_death)[0]
        assert (d["cause"], d["signal"], d["notebook"]) == ("signal", "SIGSEGV", "crash.ipynb")
        seen_by_a = {d["kernel_id"] for d in a.api("GET", "api/kernel-wizard/deaths")["deaths"]}
        assert b_crash not in seen_by_a and b_idle not in seen_by_a
        assert a_idle in seen_by_a  # its own shutdown, recorded (notify false)
        seen_by_b = {d["kernel_id"] for d in b.api("GET", "api/kernel-wizard/deaths")["deaths"]}
        assert a_idle not in seen_by_b

        # Details: the answering server is never "refusing"; only its own kernels' deaths
        text = a.api("GET", "api/kernel-wizard/report")["text"]
        assert "Kernel wizard" in text and "refus" not in text, text
        assert "crash.ipynb" not in text, text
        text = b.api("GET", "api/kernel-wizard/report")["text"]
        assert "refus" not in text and "crash.ipynb" in text, text
    finally:
        a.stop()
        b.stop()
    # (the never-ready kernel prints its own KeyboardInterrupt when it is shut down)
    assert "/wizard/" not in a.log() + b.log()


def test_halt_body_and_bad_options_are_one_line(tmp_path):
    need_jupyter()
    db = tmp_path / "history.sqlite3"
    server = JupyterServer(
        tmp_path / "s",
        extra_args=[ENABLE, "--KernelWizard.halt_idle_after=0"],
        env={"WIZARD_DB": str(db)},
    )
    with server:
        with pytest.raises(RuntimeError, match=r"HTTP 400.*kernel_ids"):
            server.api("POST", "api/kernel-wizard/halt-idle", {"idle_seconds": 0})
        plan = server.api("GET", "api/kernel-wizard/halt-idle")
        log = server.log()
    assert plan["threshold"] == 60  # the bad value is not used
    assert "KernelWizard.halt_idle_after must be at least 5 s" in log
    assert "Traceback" not in log
