"""Deaths counted past one, and the textfile replaced whole: through the paths users
read (a real server's ``/metrics``, ``python -m wizard watch --textfile``'s writer)."""

import http.client
import os
import threading
import time
import types
from pathlib import Path

import pytest
from conftest import need

from wizard.server import metrics

REPO = Path(__file__).resolve().parent.parent
ENABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": True}'
SEGFAULT = "import ctypes; ctypes.string_at(0)"
SEGV = {"cause": "signal", "signal": "SIGSEGV", "kernel_name": "python3"}


def parse(text):
    """``{(name, labels as sorted tuple): value}`` as prometheus_client reads the text."""
    need_prometheus_client()
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def need_prometheus_client():
    import importlib.util

    need(importlib.util.find_spec("prometheus_client") is not None, "prometheus_client")


def deaths_of(found, **labels):
    want = tuple(sorted(labels.items()))
    return found.get(("jupyter_kernel_deaths_total", want))


def scrape(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"token {server.token}"})
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read().decode()
    finally:
        conn.close()


def wait_for(what, fn, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.server
def test_two_segfaults_of_one_kernelspec_count_two_on_the_servers_metrics(
    jupyter_server_factory, tmp_path
):
    need_prometheus_client()
    env = {
        "PYTHONPATH": str(REPO),
        "WIZARD_DB": str(tmp_path / "history.sqlite3"),
        "WIZARD_WATCH_INTERVAL": "0.5",
    }
    server = jupyter_server_factory(extra_args=[ENABLE], env=env)
    kid = server.create_session("crash.ipynb")["kernel"]["id"]
    for n in (1, 2):
        server.execute(kid, "pass")  # up (again, after the restart)
        pid = server.kernel_pid(kid)
        with pytest.raises(Exception):  # noqa: B017 - the kernel dies under the request
            server.execute(kid, SEGFAULT, timeout=10)
        server._kernel_pids.discard(pid)
        wait_for(
            f"death {n} on /metrics",
            lambda n=n: (deaths_of(parse(scrape(server)), **SEGV) or 0) >= n,
        )
    found = parse(scrape(server))
    assert deaths_of(found, **SEGV) == 2
    assert deaths_of(found, cause="oom-kill", signal="SIGKILL", kernel_name="python3") == 0


def recorder(known=None):
    return types.SimpleNamespace(known=known or {}, cg_now={}, host_total=8 << 30)


def test_the_textfile_counts_one_label_set_twice(tmp_path):
    tf = metrics.Textfile(str(tmp_path))
    assert tf.write(recorder(), [dict(SEGV)]) is None
    assert tf.write(recorder(), [dict(SEGV), dict(SEGV)]) is None
    found = parse((tmp_path / metrics.TEXTFILE_NAME).read_text())
    assert deaths_of(found, **SEGV) == 3


def test_the_server_collector_counts_one_label_set_twice():
    need_prometheus_client()
    from prometheus_client import CollectorRegistry, generate_latest

    counter = metrics.DeathCounter()
    for _ in range(2):
        assert counter.record(dict(SEGV))
    registry = CollectorRegistry()
    registry.register(metrics.ServerCollector(types.SimpleNamespace(), counter=counter))
    found = parse(generate_latest(registry).decode())
    assert deaths_of(found, **SEGV) == 2


# -- the textfile is replaced, never written in place ------------------------------------


def test_the_textfile_is_a_new_file_each_time_and_the_old_one_stays_whole(tmp_path):
    tf = metrics.Textfile(str(tmp_path))
    path = tmp_path / metrics.TEXTFILE_NAME
    tf.write(recorder(), [dict(SEGV)])
    first = path.read_bytes()
    with open(path, "rb") as reader:  # node_exporter reading while the next write lands
        inode = os.fstat(reader.fileno()).st_ino
        tf.write(recorder(), [dict(SEGV, kernel_name="other-" + "x" * 200)])
        assert os.stat(path).st_ino != inode, "the file was written in place"
        assert reader.read() == first, "a reader of the old file saw it change"
    assert path.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == [metrics.TEXTFILE_NAME]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_reader_never_sees_a_partial_textfile(tmp_path):
    # Files of growing size written over and over; a reader in a loop must always
    # parse a whole file ending in a newline, with every family's HELP line.
    tf = metrics.Textfile(str(tmp_path))
    path = tmp_path / metrics.TEXTFILE_NAME
    tf.write(recorder(), [])
    stop = threading.Event()
    bad = []

    def read():
        while not stop.is_set():
            data = path.read_text()
            if not data.endswith("\n") or data.count("# HELP ") != len(metrics.FAMILIES):
                bad.append(data[-80:])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(100):
            names = [f"spec-{i}-{j}" for j in range(i % 40)]
            tf.write(recorder(), [dict(SEGV, kernel_name=n) for n in names])
    finally:
        stop.set()
        reader.join()
    assert bad == []
