"""A real JupyterHub with two users: each sees their own kernels and deaths, the admin's
Prometheus sees them all.

The hub (tests/hub/: z2jh's values read as z2jh does, configurable-http-proxy from
npm, a fixed password, the local process spawner with each server in its own 400 MiB
memory cgroup) runs alice's and bob's servers from a venv with this checkout
installed. Alice logs in through the hub in headless Chromium, her notebook is
OOM-killed, and JupyterLab names the cause and her limit. Bob's kernels: one died of
SIGSEGV, one is idle. Alice's "halt idle kernels" leaves bob's running, and no answer of
her /user/alice/api/kernel-wizard/* tells anything of bob's. A real Prometheus scrapes
every server through the proxy with the token of the hub service "prometheus", from
tests/hub/prometheus.yml as docs/fleet.rst shows it, and counts deaths by user and
cause.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jupyter_fixtures
import pytest
import yaml
from conftest import need

HUB_DIR = Path(__file__).resolve().parent / "hub"
sys.path.insert(0, str(HUB_DIR))
from harness import Hub, free_port, need_hub, wait_for  # noqa: E402  (tests/hub/harness.py)

USERS = ("alice", "bob")
LIMIT_TEXT = "of its 400 MiB limit"
HOG = "hog = [b'x' * (10 << 20) for _ in range(150)]"
SEGFAULT = "import ctypes; ctypes.string_at(0)"
BOB_SECRET = "bob-secret-plans.ipynb"
BOB_IDLE = "bob-idle-analysis.ipynb"
CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _notebook(code):
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": "c1",
                    "metadata": {},
                    "outputs": [],
                    "source": code,
                }
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


@pytest.fixture(scope="module")
def hub():
    need_hub()
    t0 = time.monotonic()
    with Hub(USERS) as h:
        h.put_file("alice", "big.ipynb", _notebook(HOG))
        h.put_file("bob", BOB_SECRET, _notebook(SEGFAULT))
        h.put_file("bob", BOB_IDLE, _notebook("x = 1"))
        t1 = time.monotonic()
        for name in USERS:
            h.start_server(name)
        h.api("POST", "/hub/api/users/alice/servers/gpu")

        wait_for(
            "alice's server gpu",
            lambda: h.api("GET", "/hub/api/users/alice")["servers"].get("gpu", {}).get("ready"),
            timeout=150,
        )
        h.timings["three servers"] = time.monotonic() - t1
        h.tokens_of = {name: h.user_token(name) for name in USERS}
        h.timings["set up"] = time.monotonic() - t0
        yield h
        print(f"\nhub timings (s): {json.dumps({k: round(v, 1) for k, v in h.timings.items()})}")


# -- helpers -------------------------------------------------------------------------------


def _server_api(hub, user, method, path, token=None, body=None, server=""):
    base = f"/user/{user}/{server + '/' if server else ''}"
    return hub.api(method, base + path, token=token, body=body)


def _kernel_pid(hub, user, kernel_id, server="default"):
    """The pid of the user's kernel, from the processes of the user's server cgroup."""
    for pid in hub.cgroup_pids(user, server):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(f"kernel-{kernel_id}.json".encode() in a for a in cmd):
                return pid
    return None


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _connection_file(hub, user, kernel_id):
    return hub.home(user) / ".local" / "share" / "jupyter" / "runtime" / f"kernel-{kernel_id}.json"


def _fire(hub, user, kernel_id, code, timeout=120.0):
    """Send code to the user's kernel (root reads the user's connection file) and wait
    until the kernel took it. On a loaded machine the first heartbeat can be late, and
    the client then thinks the kernel dead: a new client tries again."""
    from jupyter_client import BlockingKernelClient

    cf = _connection_file(hub, user, kernel_id)
    wait_for("the connection file", cf.exists, timeout=60)
    end = time.monotonic() + timeout
    while True:
        kc = BlockingKernelClient(connection_file=str(cf))
        kc.load_connection_file()
        kc.start_channels()
        try:
            jupyter_fixtures.wait_kernel_ready(kc, timeout=60)  # not the 1-s heartbeat
        except RuntimeError:
            if time.monotonic() > end:
                raise
            time.sleep(1)
            continue
        else:
            msg_id = kc.execute(code)
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
                    return
        finally:
            kc.stop_channels()


def _session(hub, user, path, server=""):
    body = {"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}}
    got = _server_api(hub, user, "POST", "api/sessions", body=body, server=server)
    return got["kernel"]["id"]


@pytest.fixture(scope="module")
def bob(hub):
    """Bob's kernels: one died of SIGSEGV (a death in bob's history), one idle."""

    crashed = _session(hub, "bob", BOB_SECRET)
    pid = wait_for("bob's kernel", lambda: _kernel_pid(hub, "bob", crashed))
    with contextlib.suppress(Exception):
        _fire(hub, "bob", crashed, SEGFAULT)
    wait_for("bob's kernel to crash", lambda: not _alive(pid))
    idle = _session(hub, "bob", BOB_IDLE)
    idle_pid = wait_for("bob's idle kernel", lambda: _kernel_pid(hub, "bob", idle))
    _fire(hub, "bob", idle, "x = 1")
    # bob's own API has his death: what alice must not see is really there
    bob_token = hub.tokens_of["bob"]
    found = wait_for(
        "bob's death in his own API",
        lambda: [
            d
            for d in _server_api(hub, "bob", "GET", "api/kernel-wizard/deaths", bob_token)["deaths"]
            if d["kernel_id"] == crashed
        ],
    )
    assert found[0]["signal"] == "SIGSEGV" and BOB_SECRET in (found[0]["notebook"] or "")
    return {
        "crashed": crashed,
        "idle": idle,
        "idle_pid": idle_pid,
        "pids": [pid, idle_pid],
        "home": str(hub.home("bob")),
    }


# -- alice, in JupyterLab through the hub's OAuth ---------------------------------------------


@contextlib.contextmanager
def _browser(tmp_path):
    need(os.access(CHROMIUM, os.X_OK), f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright package (pip install playwright)")
    from test_site_browser import CHROMIUM_ARGS

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(60_000)
        context.route(
            re.compile(r"^(?!http://127\.0\.0\.1[:/]|data:|blob:|about:)"),
            lambda route: route.abort(),
        )
        try:
            yield context
        finally:
            context.close()


def test_alice_sees_her_oom_kill_with_her_limit(hub, bob, tmp_path):

    t0 = time.monotonic()
    with _browser(tmp_path) as context:
        page = context.new_page()
        page.goto(f"{hub.url}/hub/login?next=/user/alice/lab/tree/big.ipynb", wait_until="load")
        page.fill("#username_input", "alice")
        page.fill("#password_input", hub.password)
        page.click("#login_submit")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
        assert page.url.startswith(f"{hub.url}/user/alice/lab"), page.url
        alice = hub.tokens_of["alice"]

        def kernel():
            for s in _server_api(hub, "alice", "GET", "api/sessions", alice):
                if s["path"] == "big.ipynb" and s.get("kernel"):
                    return s["kernel"]["id"]
            return None

        kid = wait_for("alice's kernel", kernel, timeout=90)
        pid = wait_for("its process", lambda: _kernel_pid(hub, "alice", kid), timeout=60)
        wait_for(
            "the kernel to be idle",
            lambda: any(
                k["id"] == kid and k["execution_state"] == "idle"
                for k in _server_api(hub, "alice", "GET", "api/kernels", alice)
            ),
            timeout=90,
        )
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        wait_for("the OOM kill", lambda: not _alive(pid), timeout=120, every=0.05)
        toast = page.locator(".Toastify__toast", has_text="out-of-memory").first
        toast.wait_for(timeout=20_000)
        text = toast.inner_text()
        assert "big.ipynb's kernel was killed by the out-of-memory killer holding" in text, text
        assert LIMIT_TEXT in text, text
        # bob's crash is not alice's: her page never speaks of it
        assert page.locator(".Toastify__toast", has_text="SIGSEGV").count() == 0
    hub.timings["alice in lab"] = time.monotonic() - t0
    oom = (hub.server_cgroup("alice") / "memory.oom_control").read_text()
    assert int(re.search(r"oom_kill (\d+)", oom).group(1)) >= 1, oom  # the kernel's cgroup


# -- what alice's API tells her --------------------------------------------------------------


def _bobs_traces(bob):
    return [BOB_SECRET, BOB_IDLE, bob["home"], bob["crashed"], bob["idle"], "/bob"] + [
        str(p) for p in bob["pids"]
    ]


def test_alice_api_tells_nothing_of_bob(hub, bob):
    alice = hub.tokens_of["alice"]
    answers = {}
    for path in ("deaths?since=0", "report"):
        answers[path] = _server_api(hub, "alice", "GET", f"api/kernel-wizard/{path}", alice)
    # "Halt idle kernels" as the dialog does it: the plan, then every kernel in it confirmed
    answers["halt-idle plan"] = plan = _server_api(
        hub, "alice", "GET", "api/kernel-wizard/halt-idle", alice
    )
    confirmed = [k["kernel_id"] for k in plan["halt"]] + [k["kernel_id"] for k in plan["left"]]
    answers["halt-idle"] = _server_api(
        hub, "alice", "POST", "api/kernel-wizard/halt-idle", alice, body={"kernel_ids": confirmed}
    )
    text = json.dumps(answers)
    assert answers["report"]["text"].strip(), answers["report"]
    for trace in _bobs_traces(bob):
        pid_like = trace.isdigit()
        found = re.search(rf"\b{re.escape(trace)}\b", text) if pid_like else trace in text
        assert not found, f"{trace!r} of bob's in alice's answers: {text[:3000]}"
    # her own death is there
    assert any(d["cause"] == "oom-kill" for d in answers["deaths?since=0"]["deaths"]), answers
    # bob's idle kernel is still running, in his server, and the same process
    kernels = _server_api(hub, "bob", "GET", "api/kernels", hub.tokens_of["bob"])
    assert bob["idle"] in [k["id"] for k in kernels], kernels
    assert _alive(bob["idle_pid"])
    # alice's token opens none of bob's server
    status, _ = hub.request("GET", "/user/bob/api/kernel-wizard/deaths", token=alice)
    assert status == 403, status
    status, _ = hub.request("GET", "/user/bob/metrics", token=alice)
    assert status == 403, status


# -- the admin's view: Prometheus through the proxy -------------------------------------------


def _prometheus_config(hub, base):
    """tests/hub/prometheus.yml with the test hub's address and token file."""
    token_file = base / "jupyterhub-token"
    token_file.write_text(hub.tokens["prometheus"])
    token_file.chmod(0o600)
    conf = yaml.safe_load((HUB_DIR / "prometheus.yml").read_text())
    conf["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    (job,) = conf["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    (address,) = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
    address["replacement"] = f"127.0.0.1:{hub.port}"
    path = base / "prometheus.yml"
    path.write_text(json.dumps(conf))
    return path


@contextlib.contextmanager
def _prometheus(config, port, base, log):
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_prometheus_counts_deaths_by_user_and_cause(hub, bob, tmp_path):
    from test_metrics import need_prometheus

    need_prometheus()
    # the role's one scope is what it takes: without the token, no metrics
    assert hub.request("GET", "/user/alice/metrics")[0] in (302, 403)
    status, page = hub.request("GET", "/user/alice/gpu/metrics", token=hub.tokens["prometheus"])
    assert status == 200, (status, page[:300])
    base = tmp_path / "prometheus"
    base.mkdir()
    config = _prometheus_config(hub, base)
    port = free_port()
    with open(base / "log", "wb") as log, _prometheus(config, port, base, log):

        def query(expr):
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.load(r)["data"]["result"]

        def all_up():
            got = {
                (r["metric"]["user"], r["metric"].get("server", "")): r["value"][1]
                for r in query("up")
            }
            want = {("alice", ""), ("bob", ""), ("alice", "gpu")}
            assert set(got) == want, got
            return all(v == "1" for v in got.values())

        wait_for("every server scraped", all_up, timeout=60)
        expr = 'sum by (user, cause) (jupyter_kernel_deaths_total{job="jupyter-servers"}) > 0'
        rows = wait_for("deaths by user", lambda: len(query(expr)) >= 2 and query(expr), 60)
        got = {(r["metric"]["user"], r["metric"]["cause"]): float(r["value"][1]) for r in rows}
        # alice's one death is hers alone; bob's SIGSEGV is his (a kernel the server
        # restarts after a crash may also fail to start on a loaded machine: "exit")
        assert {k: v for k, v in got.items() if k[0] == "alice"} == {("alice", "oom-kill"): 1.0}
        assert got[("bob", "signal")] == 1.0 and {k[0] for k in got} == {"alice", "bob"}, got
        # bob's idle kernel runs under his server's limit (alice's may be restarting)
        limits = query('max by (user) (jupyter_kernel_memory_limit_bytes{server=""})')
        limits = {r["metric"]["user"]: float(r["value"][1]) for r in limits}
        assert limits.get("bob") == 400 << 20 and set(limits.values()) == {400 << 20}, limits


# -- a whole server killed with its kernels ---------------------------------------------------


def _history(hub, user):
    return hub.home(user) / ".local" / "share" / "kernel-wizard" / "history.sqlite3"


def _sampled(db, notebook):
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT count(*) FROM samples s JOIN kernels k ON s.kernel = k.id"
            " WHERE k.notebook LIKE ?",
            (f"%{notebook}",),
        ).fetchone()[0]
    finally:
        conn.close()


def test_a_server_killed_whole_is_told_by_the_next(hub, bob):
    """SIGKILL to every process of alice's server "gpu" (as memory.oom.group does): her
    history, in her home, tells the next server what is known, and how sure it is."""
    from wizard.server.previous import previous_server

    # her default server stops first: on a hub each server is its own pod and no other
    # server of hers sees the kill (here they would share her processes). The hub stops
    # it with a SIGINT, which jupyter_server answers without shutting down its kernels
    # (big.ipynb's may still run): the server records that it exits, with what it left.
    hub.api("DELETE", "/hub/api/users/alice/server")
    wait_for(
        "alice's default server to stop",
        lambda: "" not in hub.api("GET", "/hub/api/users/alice")["servers"],
        timeout=90,
    )
    hub.put_file("alice", "gpu-work.ipynb", _notebook("x = 1"))
    kid = _session(hub, "alice", "gpu-work.ipynb", server="gpu")
    wait_for("the kernel", lambda: _kernel_pid(hub, "alice", kid, server="gpu"))
    db = _history(hub, "alice")
    # the gpu server takes over recording within LOCK_RETRY (30 s) of the other's stop
    wait_for("its memory on record", lambda: _sampled(db, "gpu-work.ipynb") >= 2, timeout=120)
    cg = hub.server_cgroup("alice", "gpu")
    hub._kill_all(cg)  # the server and its kernel at once; nothing shuts down
    killed = time.time()
    time.sleep(3)  # what the other server's recorder may note meanwhile
    oom = int(re.search(r"oom_kill (\d+)", (cg / "memory.oom_control").read_text()).group(1))
    got = previous_server(
        str(db),
        started=time.time(),
        oom_kills_now=oom,
        cgroup=hub.cgroup_path("alice", "gpu"),
        alive=lambda pid, started: _alive(pid),
    )
    assert got.stopped_cleanly is False, got
    assert got.notebooks == ["gpu-work.ipynb"], got  # big.ipynb, left at an exit, is no orphan
    assert got.last_record <= killed + 1
    text = got.message()
    assert text.startswith("Your previous server stopped without shutting down its kernels"), text
    # a SIGKILL is no OOM kill: nothing proves one, and memory was far from the limit
    assert got.certainty == "unknown" and got.cause is None, got
    assert "Memory was not near the limit" in text, text
    # the server started again tells her the same, in the answer the plugin shows
    wait_for(
        "the hub to start her server gpu again",
        lambda: (
            hub.request("POST", "/hub/api/users/alice/servers/gpu", hub.admin_token)[0]
            in (201, 202)
        ),
        timeout=90,
        every=2,
    )
    wait_for(
        "alice's server gpu, again",
        lambda: hub.api("GET", "/hub/api/users/alice")["servers"].get("gpu", {}).get("ready"),
        timeout=150,
    )
    alice = hub.tokens_of["alice"]
    told = _server_api(hub, "alice", "GET", "api/kernel-wizard/previous", alice, server="gpu")
    assert told["notebooks"] == ["gpu-work.ipynb"] and told["certainty"] == "unknown", told
    assert told["message"].startswith("Your previous server stopped without shutting down"), told
    assert "Memory was not near the limit" in told["message"], told
    assert told["url"].endswith("fleet.html#fleet-oom-group"), told
