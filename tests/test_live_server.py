"""The kernels and servers probes against a real Jupyter server with two notebooks."""

import json
import os
import signal
import time

import pytest

from wizard.probes import kernels, servers
from wizard.system.sysroot import SysRoot

pytestmark = pytest.mark.server

MB = 1 << 20
HOLD_200MB = (
    "x = bytearray(200 * 1024 * 1024)\nx[::4096] = b'\\x01' * (len(x) // 4096)\nprint('held')"
)


def tree_rss(pid):
    import psutil

    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])


def probe_all(server, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime_dir))
    kres = kernels.probe(SysRoot())
    sres = servers.probe(SysRoot(), timeout_total=5.0)
    servers.merge(kres, sres)
    return kres, sres


def test_two_notebooks_one_holding_200mb(jupyter_server, monkeypatch):
    srv = jupyter_server
    ka = srv.create_session("a.ipynb")["kernel"]["id"]
    kb = srv.create_session("sub/b.ipynb")["kernel"]["id"]
    assert srv.execute(ka, HOLD_200MB) == {"status": "ok", "stdout": "held\n", "error": None}
    assert srv.execute(kb, "1 + 1")["status"] == "ok"

    kres, sres = probe_all(srv, monkeypatch)
    ours = [k for k in kres["kernels"] if k["kernel_id"] in (ka, kb)]
    assert [k["kernel_id"] for k in ours] == [ka, kb]  # sorted by memory
    a, b = ours
    assert a["pid"] == srv.kernel_pid(ka) and b["pid"] == srv.kernel_pid(kb)
    assert a["connection_file"] == str(srv.connection_file(ka))
    assert (a["kernel_name"], b["kernel_name"]) == ("python3", "python3")
    assert a["notebook"] == str(srv.root_dir / "a.ipynb")
    assert b["notebook"] == str(srv.root_dir / "sub" / "b.ipynb")
    assert a["notebook_source"] == b["notebook_source"] == "connection-file"
    assert a["rss_bytes"] > 200 * MB
    expected = tree_rss(a["pid"])
    assert abs(a["rss_bytes"] - expected) < 0.10 * expected
    assert abs(b["rss_bytes"] - tree_rss(b["pid"])) < 0.10 * tree_rss(b["pid"])
    assert (a["server_pid"], a["execution_state"]) == (srv.pid, "idle")
    assert a["last_activity"] and a["uid"] == os.getuid()
    assert time.time() - 120 < a["started"] <= time.time()

    (s,) = [x for x in sres["servers"] if x["pid"] == srv.pid]
    assert s["file"] == str(srv.info_file)
    assert (s["alive"], s["reachable"], s["error"]) == (True, True, None)
    assert s["url"] == srv.url and s["root_dir"] == str(srv.root_dir)
    assert {k["id"] for k in s["kernels"]} == {ka, kb}
    assert {(x["path"], x["kernel_id"], x["type"]) for x in s["sessions"]} == {
        ("a.ipynb", ka, "notebook"),
        ("sub/b.ipynb", kb, "notebook"),
    }
    for result in (kres, sres):
        text = json.dumps(result)
        assert srv.token not in text
        assert json.loads(srv.connection_file(ka).read_text())["key"] not in text

    # the server restarts a killed kernel: same id, new process, still found
    old = a["pid"]
    os.kill(old, signal.SIGKILL)
    end = time.monotonic() + 20
    while True:
        kres, _ = probe_all(srv, monkeypatch)
        again = [k for k in kres["kernels"] if k["kernel_id"] == ka]
        if again and again[0]["pid"] != old:
            break
        assert time.monotonic() < end, "the killed kernel was not restarted"
        time.sleep(0.2)
    assert again[0]["rss_bytes"] < 200 * MB
    assert again[0]["notebook"] == str(srv.root_dir / "a.ipynb")


def test_server_without_sessions_and_a_kernel_started_without_one(
    jupyter_server_factory, monkeypatch
):
    srv = jupyter_server_factory()
    kid = srv.api("POST", "api/kernels", {"name": "python3"})["id"]
    pid = srv.kernel_pid(kid)
    kres, sres = probe_all(srv, monkeypatch)
    (k,) = [k for k in kres["kernels"] if k["kernel_id"] == kid]
    assert k["pid"] == pid
    assert (k["notebook"], k["notebook_source"], k["server_pid"]) == (None, None, srv.pid)
    (s,) = [x for x in sres["servers"] if x["pid"] == srv.pid]
    assert s["reachable"] is True and s["sessions"] == []
    # after the server is gone, its kernel is gone too, and nothing is left behind
    srv.stop()
    assert not srv.info_file.exists()
    kres, sres = probe_all(srv, monkeypatch)
    assert kid not in {k["kernel_id"] for k in kres["kernels"]}
    assert sres["servers"] == []
