"""Kernel metrics for real: a Jupyter server with ``wizard.server_ext`` in a child memory
cgroup serves kernel deaths and memory on its own ``/metrics``; a real Prometheus scrapes
it with the token and answers PromQL over them (the dashboard's queries and the alert
rules included); ``watch --textfile`` writes what node_exporter and promtool accept; the
shipped alert rules pass promtool's own unit tests.
"""

import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import need
from test_watch import HOG, SEGFAULT, Scene, stop, wait_for_deaths, wizard_cmd, wizard_env

from wizard.server import metrics

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "contrib" / "prometheus" / "kernel-wizard-rules.yml"
RULES_TEST = REPO / "contrib" / "prometheus" / "kernel-wizard-rules-test.yml"
DASHBOARD = REPO / "contrib" / "grafana" / "kernel-wizard-dashboard.json"
ENABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": True}'
BIG_LIMIT = 600 << 20  # room for three kernels, a child and the server; the hog still dies

# A kernel's child that holds ~40 MiB (written, so resident) and says when it does; it
# ignores the SIGINT a kernel shutdown sends its process group (the test kills it).
CHILD_CODE = (
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "x = b'x' * (40 << 20); print('ready', flush=True); time.sleep(600)"
)
CHILD = (
    "import subprocess, sys\n"
    f"p = subprocess.Popen([sys.executable, '-c', {CHILD_CODE!r}], stdout=subprocess.PIPE)\n"
    "p.stdout.readline()\n"
    "print(p.pid)\n"
)

# Grafana's own variables, as a dashboard would expand them.
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$instance": ".*",
}


def need_prometheus():
    for tool in ("prometheus", "promtool"):
        need(shutil.which(tool), f"{tool} is not installed (apt-get install -y prometheus)")


def need_prometheus_client():
    need(importlib.util.find_spec("prometheus_client"), "prometheus_client is not installed")


def promtool(*args, stdin=None):
    return subprocess.run(
        ["promtool", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


# -- reading /metrics -------------------------------------------------------------------


def scrape(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"token {server.token}"})
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 200, body[:300]
    return body


def samples(text):
    """``[(name, labels, value)]`` of exposition text, through prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (s.name, s.labels, s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]


def total(found, name, **labels):
    return sum(
        v
        for n, lab, v in found
        if n == name and all(lab.get(k) == want for k, want in labels.items())
    )


def wait_for(what, check, timeout=60.0, every=0.25):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


# -- a real Prometheus -------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """The Debian ``prometheus`` binary with its own config and storage under ``base``,
    on loopback, scraping ``targets`` every second with the token from a file."""

    def __init__(self, base, target_port, token):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        token_file = self.base / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "jupyter",
                    "metrics_path": "/metrics",
                    "authorization": {"credentials_file": str(token_file)},
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                }
            ],
        }
        self.config = self.base / "prometheus.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.log_path = self.base / "prometheus.log"
        self.proc = None

    def __enter__(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.base / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
            )
        try:
            wait_for("Prometheus to be ready", self._ready, timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")[-3000:]

    def _ready(self):
        assert self.proc.poll() is None, self.log()
        with contextlib.suppress(OSError):
            return self._get("/-/ready")[0] == 200
        return False

    def _get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def api(self, path, **params):
        status, body = self._get(f"/api/v1/{path}?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (path, params, body[:500])
        return answer["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]


def dashboard_queries():
    """Every PromQL expression of the dashboard, Grafana's variables expanded."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for var in dash["templating"]["list"]:
        q = var.get("definition") or ""
        m = re.fullmatch(r"label_values\((.+), *\w+\)", q)
        if m:
            exprs.append(m.group(1))  # label_values(SELECTOR, label): Grafana asks for SELECTOR
    expanded = []
    for e in exprs:
        for var, value in GRAFANA_VARS.items():
            e = e.replace(var, value)
        assert "$" not in e, e
        expanded.append(e)
    return expanded


# -- the whole chain, for real -------------------------------------------------------------


def tree_rss(pid):
    import psutil

    p = psutil.Process(pid)
    return p.memory_info().rss + sum(
        c.memory_info().rss for c in p.children(recursive=True) if c.is_running()
    )


@pytest.mark.server
@pytest.mark.oom
def test_server_metrics_after_real_deaths_scraped_by_prometheus(tmp_path):
    need_prometheus()
    need_prometheus_client()
    db = tmp_path / "history.sqlite3"
    env = {"WIZARD_DB": str(db), "WIZARD_WATCH_INTERVAL": "0.5"}
    child = None
    with Scene(tmp_path, extra_args=[ENABLE], env=env) as scene:
        try:
            cg = scene.cg
            if (cg / "memory.memsw.limit_in_bytes").exists():  # memsw first: it must stay >=
                (cg / "memory.memsw.limit_in_bytes").write_text(str(BIG_LIMIT))
            (cg / "memory.limit_in_bytes").write_text(str(BIG_LIMIT))
            limit = int((cg / "memory.limit_in_bytes").read_text())
            server = scene.server
            ks = scene.open("crash.ipynb", "big.ipynb", "done.ipynb")
            ran = server.execute(ks["done.ipynb"]["id"], CHILD)
            assert ran["status"] == "ok", ran
            child = int(ran["stdout"].split()[-1])

            with Prometheus(tmp_path / "prometheus", server.port, server.token) as prom:
                # memory of the live kernels, each with its children, against psutil's
                text = scrape(server)
                want = sum(tree_rss(k["pid"]) for k in ks.values())
                found = samples(text)
                got = total(found, "jupyter_kernel_memory_bytes", kernel_name="python3")
                assert abs(got - want) <= 0.1 * want, (got, want)
                assert total(found, "jupyter_kernel_memory_limit_bytes") == limit
                assert tree_rss(ks["done.ipynb"]["pid"]) > 40 << 20  # the child counts
                # Prometheus has seen the counters at 0 before anything dies
                # (every death series of a seen kernelspec, SIGSEGV's too)
                wait_for(
                    "a first scrape",
                    lambda: (
                        prom.query('jupyter_kernel_deaths_total{signal="SIGSEGV"}')
                        and prom.query('jupyter_kernel_deaths_total{cause="oom-kill"}')
                    ),
                )

                scene.fire("crash.ipynb", SEGFAULT)
                scene.fire("big.ipynb", HOG)

                def two_deaths():
                    found = samples(scrape(server))
                    oom = total(found, "jupyter_kernel_deaths_total", cause="oom-kill")
                    segv = total(found, "jupyter_kernel_deaths_total", signal="SIGSEGV")
                    return found if (oom, segv) == (1, 1) else None

                found = wait_for("an OOM kill and a segfault on /metrics", two_deaths)
                assert total(found, "jupyter_kernel_deaths_total", cause="signal") == 1
                assert total(found, "jupyter_kernel_oom_kills_total") >= 1

                # a shutdown through the API: recorded as such, and not a death
                done_pid = ks["done.ipynb"]["pid"]
                server.delete_kernel(ks["done.ipynb"]["id"])
                wait_for_deaths(db, {done_pid: lambda d: d["exact"] and d["cause"] == "shutdown"})
                text = scrape(server)
                found = samples(text)
                assert total(found, "jupyter_kernel_deaths_total") == 2, text
                causes = {lab["cause"] for n, lab, _ in found if n == "jupyter_kernel_deaths_total"}
                assert causes <= set(metrics_causes()), causes
                for secret in (server.token, *(k["id"] for k in ks.values()), ".ipynb"):
                    assert secret not in text

                # Prometheus: the deaths by cause, over its HTTP API
                def by_cause():
                    rows = prom.query('sum by (cause) (jupyter_kernel_deaths_total{job="jupyter"})')
                    got = {r["metric"]["cause"]: float(r["value"][1]) for r in rows}
                    return got if got.get("oom-kill") == 1 and got.get("signal") == 1 else None

                got = wait_for("the deaths by cause in Prometheus", by_cause)
                assert set(got) <= {"oom-kill", "signal", "exit", "unknown"}, got

                # the first segfault of this fresh server is seen by increase()
                def first_segfault():
                    rows = prom.query(
                        'sum(increase(jupyter_kernel_deaths_total{signal="SIGSEGV"}[2m]))'
                    )
                    v = float(rows[0]["value"][1]) if rows else 0.0
                    return v if v >= 0.9 else None

                assert 0.9 <= wait_for("increase() of the first segfault", first_segfault) < 1.6
                # every dashboard query is accepted, and the shipped rules run there
                for expr in dashboard_queries():
                    prom.query(expr)

                def rules_ok():
                    groups = prom.api("rules")["groups"]
                    rules = [r for g in groups for r in g["rules"]]
                    return rules if rules and all(r["health"] == "ok" for r in rules) else None

                assert len(wait_for("the alert rules evaluated", rules_ok)) == 4

                def oom_alert():
                    alerts = prom.api("alerts")["alerts"]
                    return [
                        a for a in alerts if a["labels"]["alertname"] == "JupyterKernelOOMKilled"
                    ]

                alert = wait_for("the OOM alert", oom_alert)[0]
                assert alert["state"] == "firing", alert
                assert alert["labels"]["kernel_name"] == "python3"
                assert "Traceback" not in prom.log()
            log = server.log()
        finally:
            if child is not None:
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)
    assert "Traceback" not in log
    assert "wizard.server_ext: no metrics" not in log


def metrics_causes():
    from wizard.diagnosis import endings as deaths

    return [c for c in deaths.CAUSES if c != deaths.SHUTDOWN]


# -- watch --textfile, for real ------------------------------------------------------------


def fire(server, kernel_id, code):
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(server.connection_file(kernel_id)))
    kc.load_connection_file()
    kc.start_channels()
    try:
        import jupyter_fixtures

        jupyter_fixtures.wait_kernel_ready(kc, timeout=60)  # not the 1-s heartbeat wait
        kc.execute(code)
        time.sleep(0.2)  # let the request leave before the channels close
    finally:
        kc.stop_channels()


@pytest.mark.server
def test_watch_textfile_is_read_by_prometheus_client_and_promtool(tmp_path, jupyter_server):
    need_prometheus()
    need_prometheus_client()
    out = tmp_path / "textfile"
    out.mkdir()
    prom_file = out / metrics.TEXTFILE_NAME
    session = jupyter_server.create_session("textfile/crash.ipynb")
    kid = session["kernel"]["id"]
    jupyter_server.execute(kid, "1")  # it answers
    watch = subprocess.Popen(
        [
            *wizard_cmd("watch"),
            "--db",
            str(tmp_path / "h.sqlite3"),
            "--interval",
            "0.3",
            "--textfile",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=wizard_env(jupyter_server.env),
        cwd=REPO,
    )
    try:

        def written(pred):
            def check():
                assert watch.poll() is None, watch.stdout.read()
                with contextlib.suppress(FileNotFoundError):
                    text = prom_file.read_text()
                    return text if pred(samples(text)) else None
                return None

            return check

        text = wait_for(
            "the kernel's memory in the textfile",
            written(lambda s: total(s, "jupyter_kernel_memory_bytes", kernel_name="python3") > 0),
        )
        fire(jupyter_server, kid, SEGFAULT)
        text = wait_for(
            "a death in the textfile",
            written(lambda s: total(s, "jupyter_kernel_deaths_total") >= 1),
        )
    finally:
        output = stop(watch)
    assert watch.returncode == 0, output
    assert "Traceback" not in output
    found = samples(text)
    names = {n for n, _, _ in found}
    assert {metrics.DEATHS, metrics.MEMORY, metrics.LIMIT} <= names <= set(metrics.FAMILIES)
    assert all(v >= 0 for _, _, v in found)
    assert kid not in text and ".ipynb" not in text and jupyter_server.token not in text
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(os.listdir(out)) == [metrics.TEXTFILE_NAME]  # no temporary file left
    assert prom_file.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_watch_textfile_bad_dir_is_one_line(tmp_path, kind):
    target = tmp_path / "nowhere"
    if kind == "a file":
        target.write_text("")
    done = subprocess.run(
        [
            *wizard_cmd("watch"),
            "--once",
            "--db",
            str(tmp_path / "h.sqlite3"),
            "--textfile",
            str(target),
        ],
        capture_output=True,
        text=True,
        env=wizard_env(),
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(target) in done.stderr
    assert not (tmp_path / "h.sqlite3").exists()  # nothing started


def test_textfile_write_failure_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    tf = metrics.Textfile(str(gone))
    gone.rmdir()

    class Rec:
        known, cg_now, host_total = {}, {}, None

    said = tf.write(Rec())
    assert said.startswith("cannot write ") and "\n" not in said


# -- the text format, and what the counter counts ------------------------------------------


def test_text_format_round_trips_through_the_parser():
    need_prometheus_client()
    c = metrics.DeathCounter()
    assert not c.record({"cause": "shutdown", "signal": "SIGTERM", "kernel_name": "python3"})
    assert c.record({"cause": "signal", "signal": "SIGSEGV", "kernel_name": "python3"})
    assert c.record({"cause": "exit", "signal": None, "kernel_name": 'odd "name"\\x\n'})
    c.seen("ir")
    fams = metrics.build(c.samples(), {"python3": 123456789}, {"python3": 1 << 40}, 3)
    found = samples(metrics.text(fams))
    assert (
        "jupyter_kernel_deaths_total",
        {"cause": "signal", "signal": "SIGSEGV", "kernel_name": "python3"},
        1.0,
    ) in found
    assert (
        "jupyter_kernel_deaths_total",
        {"cause": "exit", "signal": "", "kernel_name": 'odd "name"\\x\n'},
        1.0,
    ) in found
    assert (
        "jupyter_kernel_deaths_total",
        {"cause": "oom-kill", "signal": "SIGKILL", "kernel_name": "ir"},
        0.0,
    ) in found
    assert (
        "jupyter_kernel_memory_limit_bytes",
        {"kernel_name": "python3"},
        float(1 << 40),
    ) in found
    assert ("jupyter_kernel_oom_kills_total", {}, 3.0) in found
    assert not any(lab.get("cause") == "shutdown" for _, lab, _ in found)


# -- the shipped rules and dashboard -------------------------------------------------------


def test_alert_rules_pass_promtool_check_and_unit_tests():
    need_prometheus()
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_dashboard_uses_only_these_metrics_and_jupyterhubs():
    allowed = {*metrics.FAMILIES, "jupyterhub_running_servers"}
    for expr in dashboard_queries():
        used = set(re.findall(r"\b(jupyter\w+)", expr))
        assert used and used <= allowed, expr
    dash = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in dash["panels"]]
    assert "Kernel deaths by cause" in titles
    assert "Kernel memory against the limit" in titles
    assert "Top servers by kernel deaths" in titles


# -- the benchmark -------------------------------------------------------------------------


@pytest.mark.server
def test_metrics_benchmark_reports_its_figures():
    import jupyter_fixtures

    jupyter_fixtures.need_jupyter()
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_metrics.py", "--kernels", "3", "--scrapes", "5"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "/metrics with 3 kernels, 5 scrapes per server" in out, out
    for name in ("without", "with"):
        assert re.search(rf"{name} extension: +\d+\.\d+ ms per scrape \(median\)", out), out
    assert re.search(r"ratio with / without \(median\): \d+\.\d+", out), out
    assert 'kernel memory series: 1 (jupyter_kernel_memory_bytes{kernel_name="sleeper"})' in out


def test_every_death_series_of_a_seen_kernelspec_starts_at_0():
    from wizard.diagnosis import signals
    from wizard.server import metrics

    counter = metrics.DeathCounter()
    counter.seen("python3")
    got = {(lab["cause"], lab["signal"]): n for lab, n in counter.samples()}
    expected = {("oom-kill", "SIGKILL"), ("exit", ""), ("unknown", "")}
    expected |= {("signal", name) for name in signals.BY_NAME}
    assert set(got) == expected and set(got.values()) == {0}
    counter.record({"cause": "signal", "signal": "SIGSEGV", "kernel_name": "python3"})
    counter.seen("python3")  # seen again: nothing is reset
    got = {(lab["cause"], lab["signal"]): n for lab, n in counter.samples()}
    assert got[("signal", "SIGSEGV")] == 1


def test_share_is_each_group_against_its_own_limit():
    from wizard.server import metrics

    groups = metrics.Groups()
    for i in range(9):  # nine kernels of 50 MB, each in its own 400 MiB cgroup
        groups.add(50 << 20, 400 << 20, f"/kernels/k{i}")
    assert groups.share() == 50 / 400  # not 9 * 50 MB against the smallest limit
    groups.add(390 << 20, 400 << 20, "/kernels/k0")  # one cgroup goes over
    assert groups.share() > 1
