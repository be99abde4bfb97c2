"""The servers probe against server files and small HTTP servers made here."""

import http.server
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wizard.probes import servers
from wizard.system.sysroot import SysRoot

TOKEN = "t0k3n-" + "a" * 40
PASSWORD = "argon2:$argon2id$v=19$s3cr3t-pa55"


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    d = tmp_path / "runtime"
    d.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    monkeypatch.delenv("COCALC_PROJECT_ID", raising=False)
    return d


def write_server(runtime, pid, port=None, name=None, **info):
    info = {
        "base_url": "/",
        "hostname": "127.0.0.1",
        "password": False,
        "pid": pid,
        "port": port,
        "root_dir": "/home/u",
        "secure": False,
        "sock": "",
        "token": TOKEN,
        "url": f"http://127.0.0.1:{port}/",
        "version": "2.21.1",
        **info,
    }
    path = runtime / (name or f"jpserver-{pid}.json")
    path.write_text(json.dumps(info))
    return str(path)


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_secrets(result):
    text = json.dumps(result)
    assert TOKEN not in text
    assert "s3cr3t" not in text


# ---------------------------------------------------------------------------
# A small stand-in for a Jupyter server's REST API


KERNELS = [
    {
        "id": "k-1",
        "name": "python3",
        "last_activity": "2024-05-01T10:00:00.000000Z",
        "execution_state": "idle",
        "connections": 1,
    },
    {"id": "k-2", "name": "ir", "execution_state": "busy", "connections": 0},
]
SESSIONS = [
    {"id": "s-1", "path": "a.ipynb", "name": "a.ipynb", "type": "notebook", "kernel": KERNELS[0]},
    {"id": "s-2", "path": "sub/b.ipynb", "name": "b", "type": "notebook", "kernel": KERNELS[1]},
]


SEEN = []  # (path, Authorization header) of every request


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization")
        SEEN.append((self.path, auth))
        if auth != f"token {TOKEN}":
            return self._send(403, {"message": "Forbidden"})
        answers = {"/api/status": {"started": "x"}, "/api/kernels": KERNELS}
        answers["/api/sessions"] = SESSIONS
        if self.path in answers:
            return self._send(200, answers[self.path])
        return self._send(404, {})

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


@pytest.fixture
def fake_api():
    """start(kind) -> (server, port or socket path); kind: 'tcp', 'unix', 'tls'."""
    SEEN.clear()
    running = []

    def start(kind="tcp", tmp=None):
        if kind == "unix":
            path = str(tmp / "jupyter.sock")
            srv = UnixHTTPServer(path, Handler)
            where = path
        else:
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            where = srv.server_address[1]
            if kind == "tls":
                import ssl

                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*self_signed(tmp))
                srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        running.append(srv)
        return where

    yield start
    for srv in running:
        srv.shutdown()
        srv.server_close()


def self_signed(tmp):
    from conftest import need

    need(shutil.which("openssl"), "openssl is not installed")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


# ---------------------------------------------------------------------------


def test_reachable_server_with_kernels_and_sessions(runtime, fake_api):
    port = fake_api("tcp")
    path = write_server(runtime, os.getpid(), port, password=PASSWORD)
    result = servers.probe(SysRoot())
    assert result["runtime_dir"] == str(runtime)
    (s,) = result["servers"]
    assert (s["pid"], s["file"], s["alive"], s["reachable"]) == (os.getpid(), path, True, True)
    assert (s["url"], s["version"], s["root_dir"]) == (
        f"http://127.0.0.1:{port}/",
        "2.21.1",
        "/home/u",
    )
    assert s["error"] is None
    assert [k["id"] for k in s["kernels"]] == ["k-1", "k-2"]
    assert s["kernels"][0] == KERNELS[0]
    assert s["sessions"][1] == {
        "path": "sub/b.ipynb",
        "kernel_id": "k-2",
        "name": "b",
        "type": "notebook",
    }
    asked = [(f"/api/{w}", f"token {TOKEN}") for w in ("status", "kernels", "sessions")]
    assert asked == SEEN
    assert result["errors"] == []
    no_secrets(result)


def test_unix_socket_and_tls(runtime, fake_api, tmp_path):
    sock = fake_api("unix", tmp_path)
    write_server(runtime, os.getpid(), 0, name="jpserver-1.json", sock=sock, url="http+unix://x/")
    port = fake_api("tls", tmp_path)
    write_server(runtime, os.getpid(), port, name="jpserver-2.json", secure=True)
    result = servers.probe(SysRoot(), timeout_total=5.0)
    unix, tls = result["servers"]
    assert (unix["reachable"], unix["error"], len(unix["sessions"])) == (True, None, 2)
    assert (tls["reachable"], tls["error"], len(tls["kernels"])) == (True, None, 2)
    no_secrets(result)


def test_wrong_token_is_reported_without_it(runtime, fake_api):
    port = fake_api("tcp")
    write_server(runtime, os.getpid(), port, token=TOKEN + "-old")
    (s,) = servers.probe(SysRoot())["servers"]
    assert s["reachable"] is True
    assert "refused its own token (HTTP 403)" in s["error"]
    assert s["kernels"] == []
    assert TOKEN not in json.dumps(s)


def test_garbage_files_stale_and_reused_pids(runtime, tmp_path):
    from conftest import need

    need(sys.platform.startswith("linux"), "a reused pid is told apart through /proc")
    (runtime / "jpserver-11.json").write_text("{ not json")
    (runtime / "nbserver-12.json").write_bytes(bytes(range(256)))
    (runtime / "jpserver-13.json").mkdir()
    (runtime / "jpserver-14.json").write_text("[1, 2]")
    (runtime / "jpserver-15.json").write_text(json.dumps({"x": "y" * 100_000}))
    (runtime / "jpserver-16-open.html").write_text("<html>")
    (runtime / "kernel-abc.json").write_text("{}")
    dead = dead_pid()
    stale = write_server(runtime, dead, free_port(), url=f"http://127.0.0.1:1/?token={TOKEN}")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        while not Path(f"/proc/{sleeper.pid}/cmdline").read_bytes().startswith(b"sleep"):
            time.sleep(0.01)  # forked, not yet exec'd
        reused = write_server(runtime, sleeper.pid, free_port(), name="nbserver-77.json")
        before = sorted(os.listdir(runtime))
        result = servers.probe(SysRoot())
        assert sorted(os.listdir(runtime)) == before  # nothing deleted or changed
    finally:
        sleeper.kill()
        sleeper.wait()
    files = {s["file"]: s for s in result["servers"]}
    assert set(files) == {stale, reused}
    assert files[stale]["alive"] is False and files[stale]["reachable"] is None
    assert files[stale]["url"] == "http://127.0.0.1:1/"
    assert files[reused]["alive"] is False
    assert "no longer a Jupyter server" in files[reused]["error"]
    errs = result["errors"]
    assert len(errs) == 5
    for n, what in [
        ("jpserver-11.json", "not valid JSON"),
        ("nbserver-12.json", "not valid JSON"),
        ("jpserver-13.json", "is a directory"),
        ("jpserver-14.json", "not a JSON object"),
        ("jpserver-15.json", "too large"),
    ]:
        assert sum(n in e and what in e for e in errs) == 1, (n, errs)
    no_secrets(result)


def test_hanging_servers_share_one_deadline(runtime):
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # accepts connections in the kernel, never answers
    port = hang.getsockname()[1]
    refused = free_port()
    try:
        write_server(runtime, os.getpid(), port, name="jpserver-1.json")
        write_server(runtime, os.getpid(), port, name="jpserver-2.json")
        write_server(runtime, os.getpid(), refused, name="jpserver-3.json", hostname="localhost")
        t = time.monotonic()
        result = servers.probe(SysRoot(), timeout_total=1.0)
        elapsed = time.monotonic() - t
    finally:
        hang.close()
    assert elapsed < 1.5
    a, b, c = result["servers"]
    # each got a fair share of the time left, so the refused one was still asked
    assert a["reachable"] is False and "no answer on 127.0.0.1" in a["error"]
    assert b["reachable"] is False and "no answer on 127.0.0.1" in b["error"]
    assert c["reachable"] is False and "connection refused" in c["error"]
    no_secrets(result)

    # and alone, a hanging server gets the whole time and no more
    os.remove(runtime / "jpserver-2.json")
    os.remove(runtime / "jpserver-3.json")
    hang = socket.socket()
    hang.bind(("127.0.0.1", port))
    hang.listen(8)
    try:
        t = time.monotonic()
        (s,) = servers.probe(SysRoot(), timeout_total=0.8)["servers"]
        elapsed = time.monotonic() - t
    finally:
        hang.close()
    assert 0.7 < elapsed < 1.2
    assert s["error"] == f"no answer on 127.0.0.1:{port} within 0.8 s"


def test_refused_connection_is_instant(runtime):
    write_server(runtime, os.getpid(), free_port(), hostname="localhost", url=None)
    t = time.monotonic()
    (s,) = servers.probe(SysRoot(), timeout_total=5.0)["servers"]
    assert time.monotonic() - t < 1.0
    assert s["reachable"] is False
    assert s["error"].startswith("connection refused on 127.0.0.1:")
    assert s["url"].startswith("http://localhost:")


def _lan_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            return s.getsockname()[0]
        except OSError:
            return None


def test_token_never_sent_off_loopback(runtime):
    from conftest import need

    addr = _lan_address()
    need(addr and not servers.is_loopback(addr), "no non-loopback address to listen on")
    lan = socket.socket()
    lan.bind((addr, 0))
    lan.listen(8)
    lan.settimeout(0.3)
    port = lan.getsockname()[1]
    write_server(runtime, os.getpid(), port, hostname=addr, url=f"http://{addr}:{port}/")
    try:
        (s,) = servers.probe(SysRoot())["servers"]
        with pytest.raises(socket.timeout):
            lan.accept()  # the probe never connected
    finally:
        lan.close()
    assert s["alive"] is True and s["reachable"] is None
    assert "not asked" in s["error"] and "loopback" in s["error"]


def test_loopback_names():
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"):
        assert servers.is_loopback(host), host
    for host in ("10.0.0.1", "example.com", "128.0.0.1", "127.0.0.1.evil.com", "", "::"):
        assert not servers.is_loopback(host), host


def test_no_runtime_dir(runtime):
    os.rmdir(runtime)
    result = servers.probe(SysRoot())
    assert (result["servers"], result["errors"]) == ([], [])


def test_fallback(runtime, monkeypatch, tmp_path):
    import importlib.util

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lab = bin_dir / "jupyter-lab"
    lab.write_text("#!/bin/sh\n")
    lab.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    have_server = importlib.util.find_spec("jupyter_server") is not None
    fb = servers.probe(SysRoot())["fallback"]
    assert fb["cocalc"] is False
    assert "jupyterlab" in fb["installed"]
    assert ("jupyter_server" in fb["installed"]) == have_server
    if importlib.util.find_spec("notebook") is None:
        assert fb["command"] == "jupyter lab"
    monkeypatch.setenv("COCALC_PROJECT_ID", "abc")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    fb = servers.fallback()
    assert fb == {"cocalc": True, "installed": [], "command": None}


def test_merge():
    kernels_result = {
        "kernels": [
            {
                "pid": 1,
                "kernel_id": "k-1",
                "kernel_name": "python3",
                "notebook": None,
                "notebook_source": None,
            },
            {
                "pid": 2,
                "kernel_id": "k-2",
                "kernel_name": None,
                "notebook": "/abs/b.ipynb",
                "notebook_source": "connection-file",
            },
            {
                "pid": 3,
                "kernel_id": "k-9",
                "kernel_name": None,
                "notebook": None,
                "notebook_source": None,
            },
        ]
    }
    servers_result = {
        "servers": [
            {"pid": 50, "kernels": [], "sessions": []},
            {
                "pid": 77,
                "kernels": servers._kernels([*KERNELS, {"id": "k-remote", "name": "x"}]),
                "sessions": servers._sessions(SESSIONS),
            },
        ]
    }
    out = servers.merge(kernels_result, servers_result)
    assert out is kernels_result
    k1, k2, k9 = out["kernels"]
    assert (k1["notebook"], k1["notebook_source"], k1["server_pid"]) == ("a.ipynb", "server", 77)
    assert (k1["execution_state"], k1["last_activity"]) == ("idle", KERNELS[0]["last_activity"])
    assert (k2["notebook"], k2["notebook_source"]) == ("/abs/b.ipynb", "connection-file")
    assert (k2["kernel_name"], k2["execution_state"]) == ("ir", "busy")
    assert (k9["server_pid"], k9["execution_state"], k9["notebook"]) == (None, None, None)
    assert len(out["kernels"]) == 3  # the server's remote kernel is not invented


def test_a_password_only_server_is_said_to_need_a_password(runtime, fake_api):
    from wizard.diagnosis import rules
    from wizard.engines import halt_select

    port = fake_api("tcp")
    write_server(runtime, os.getpid(), port, token="", password=True)
    result = servers.probe(SysRoot())
    (s,) = result["servers"]
    assert (s["reachable"], s["needs_password"], s["kernels"]) == (True, True, [])
    assert s["error"] == "it needs a password, which the wizard does not have (HTTP 403)"
    assert "token" not in s["error"]
    rule = next(r for r in rules.RULES if r["id"] == "server-unreachable")
    found = rule["test"]({"servers": result})
    assert found["message"] == (
        f"A Jupyter server (pid {os.getpid()}) needs a password, which the wizard does not have "
        "(the server has no token): its kernels' notebooks are not listed here."
    )
    assert "refused" not in found["message"]
    assert "halt it by its pid" in found["hint"]
    kernel = {"pid": 999999, "server_pid": os.getpid(), "kernel_id": None, "notebook": None}
    with pytest.raises(halt_select.TargetError) as err:
        halt_select.resolve("work/analysis.ipynb", [kernel], result)
    msg = str(err.value)
    assert "no running kernel of yours matches" not in msg
    assert "needs a password the wizard does not have" in msg
    assert "halt the kernel by its pid" in msg
