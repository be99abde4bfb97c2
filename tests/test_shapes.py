"""The named shapes (wizard/base/shapes.py) name every key the producers really give.

One real run of the probes (a kernel process of this test, a server file of this test,
a death in this test's database) and the JSON report made from it: every dict has only
keys its TypedDict declares, and every key a TypedDict requires.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from wizard.base import shapes
from wizard.diagnosis import rules
from wizard.engines.store import Store
from wizard.probes import collect
from wizard.report import jsonout
from wizard.system import historydb, recorder_lock
from wizard.system.sysroot import SysRoot

LINUX = sys.platform.startswith("linux") and os.path.isdir("/proc/self")
SLEEP = "import time; print('ready', flush=True); time.sleep(120)"


def keys(shape):
    return shape.__required_keys__ | shape.__optional_keys__


def conforms(value, shape, where):
    """Problems: keys ``value`` has that ``shape`` does not name, or required ones it lacks."""
    assert isinstance(value, dict), f"{where}: {type(value).__name__}, not a dict"
    extra = sorted(set(value) - keys(shape))
    missing = sorted(shape.__required_keys__ - set(value))
    out = []
    if extra:
        out.append(f"{where} has keys {shape.__name__} does not name: {extra}")
    if missing:
        out.append(f"{where} lacks keys {shape.__name__} requires: {missing}")
    return out


@pytest.fixture
def run_once(tmp_path, monkeypatch):
    """The facts and the JSON report of one run that sees this test's kernel and server."""
    from conftest import need

    need(LINUX, "needs Linux /proc")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    db = tmp_path / "history.sqlite3"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("WIZARD_DB", str(db))
    conn = runtime / "kernel-5ec2e7aa-0000-4000-8000-000000000001.json"
    conn.write_text(json.dumps({"kernel_name": "python3", "ip": "127.0.0.1", "key": "k"}))
    kernel = subprocess.Popen(
        [sys.executable, "-c", SLEEP, "-m", "ipykernel_launcher", "-f", str(conn)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert kernel.stdout.readline() == b"ready\n"
        # a server file naming this test's own process, on a port nothing listens on
        (runtime / f"jpserver-{os.getpid()}.json").write_text(
            json.dumps({"pid": os.getpid(), "port": 9, "url": "http://127.0.0.1:9/"})
        )
        store = Store(str(db))
        store.record_death(
            {"pid": 4941, "kernel_id": "k1", "time": time.time() - 60, "returncode": -9}
        )
        store.close()
        end = time.monotonic() + 15
        while True:
            facts = collect.gather(SysRoot(), server_timeout=0.5)
            mine = [k for k in facts["kernels"]["kernels"] if k["pid"] == kernel.pid]
            if mine or time.monotonic() > end:
                break
            time.sleep(0.1)
        assert mine, "the test's kernel was not found"
        facts["banner"] = None
        facts["intentional"] = False
        facts["versions"] = {"wizard": "0", "python": "3"}
        findings = rules.evaluate(facts)
        report = jsonout.report(facts, findings, None, 0)
        yield facts, mine[0], findings, report
    finally:
        kernel.kill()
        kernel.wait()
        kernel.stdout.close()


def test_the_probes_results_are_their_named_shapes(run_once):
    facts, kernel, _, _ = run_once
    bad = conforms(facts, shapes.Facts, "facts")
    bad += conforms(facts["memory"], shapes.Memory, "memory")
    for i, kill in enumerate(facts["memory"].get("oom_log") or []):
        bad += conforms(kill, shapes.Kill, f"memory.oom_log[{i}]")
    bad += conforms(facts["kernels"], shapes.KernelsResult, "kernels")
    bad += conforms(kernel, shapes.Kernel, "a kernel")
    if kernel.get("cgroup"):
        bad += conforms(kernel["cgroup"], shapes.KernelCgroup, "a kernel's cgroup")
    bad += conforms(facts["servers"], shapes.ServersResult, "servers")
    servers = facts["servers"]["servers"]
    assert servers, "the test's server file was not read"
    for s in servers:
        bad += conforms(s, shapes.Server, f"server {s.get('file')}")
    if facts["servers"].get("fallback"):
        bad += conforms(facts["servers"]["fallback"], shapes.Fallback, "servers.fallback")
    bad += conforms(facts["recorder"], shapes.RecorderStatus, "recorder")
    assert facts["deaths"], "the test's death was not read"
    for d in facts["deaths"]:
        bad += conforms(d, shapes.Death, "a death")
    for e in facts["errors"]:
        bad += conforms(e, shapes.Failure, "an error")
    assert not bad, "\n".join(bad)


def test_the_report_and_its_findings_are_their_named_shapes(run_once):
    _, _, findings, report = run_once
    assert findings, "a death killed by SIGKILL gives a finding"
    bad = conforms(report, shapes.Report, "the JSON report")
    bad += conforms(report["summary"], shapes.Summary, "summary")
    for f in findings:
        bad += conforms(f, shapes.Finding, f"finding {f.get('id')}")
    assert not bad, "\n".join(bad)


def test_every_row_of_the_rules_table_is_a_rule():
    bad = []
    for row in rules.RULES:
        bad += conforms(row, shapes.Rule, f"rule {row.get('id')}")
    assert not bad, "\n".join(bad)


def test_the_recorders_status_without_a_recorder(tmp_path):
    status = recorder_lock.recorder_status(str(tmp_path / "none.sqlite3"))
    assert not conforms(status, shapes.RecorderStatus, "recorder")
    assert historydb.recent_deaths(str(tmp_path / "none.sqlite3")) == []
