"""Whose kills, whose limit: real cgroup v1 child cgroups on this machine (root).

A kill in one cgroup is never another cgroup's: the wizard in a sibling cgroup, and
in a cgroup namespace of its own (where the kernel log's paths cannot be matched to
its own), lists it only as elsewhere on this machine. A kernel in a limited cgroup
of its own is measured against its own limit, also when the wizard runs outside it.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cgroups import child_cgroup
from conftest import need

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20

pytestmark = pytest.mark.oom

ALLOCATE = """\
import os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
hog = b"x" * (300 * 1024 * 1024)
print("survived", len(hog))
"""
MOVE_AND_RUN = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
PROBE = (
    "import json, wizard.probes.memory as m, wizard.system.sysroot as s; "
    "print(json.dumps(m.probe(s.SysRoot())))"
)
KERNEL = "import sys; hold = b'y' * (int(sys.argv[1]) << 20); print('ready', flush=True); input()"


def env():
    return dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")


def run_inside(cg, *cmd):
    return subprocess.run(
        ["sh", "-c", MOVE_AND_RUN, "sh", str(cg), *cmd],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env(),
        timeout=120,
    )


def oom_control(cg):
    return dict(line.split() for line in (cg / "memory.oom_control").read_text().splitlines())


@pytest.fixture(scope="module")
def two_cgroups():
    """Cgroup A (100 MiB) whose 300 MiB allocation was OOM-killed; sibling B untouched."""
    with child_cgroup(100 * MiB, "wizard-a") as a, child_cgroup(1 << 30, "wizard-b") as b:
        hog = subprocess.Popen(
            [sys.executable, "-c", ALLOCATE, str(a.dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = hog.communicate(timeout=120)
        assert hog.returncode == -9, (out, err[-2000:])
        yield {"a": a, "b": b, "pid": hog.pid}


def probe_in(cg, *prefix):
    done = run_inside(cg, *prefix, sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_sibling_cgroups_kill_is_elsewhere(two_cgroups):
    a, b, pid = two_cgroups["a"], two_cgroups["b"], two_cgroups["pid"]
    mem = probe_in(b.dir)
    need(not mem["oom_log_status"].startswith("unreadable"), "needs the kernel log")
    assert mem["cgroup"]["path"] == b.path
    assert int(oom_control(b.dir)["oom_kill"]) == mem["oom_kills"] == 0
    assert pid not in [k["pid"] for k in mem["oom_log"]]
    elsewhere = [k for k in mem["oom_log_elsewhere"] if k["pid"] == pid]
    assert elsewhere and elsewhere[-1]["memcg"] == a.path
    # and from inside A the same kill is ours
    mine = probe_in(a.dir)
    assert pid in [k["pid"] for k in mine["oom_log"]]


def test_in_a_cgroup_namespace_no_kill_is_ours(two_cgroups):
    b, pid = two_cgroups["b"], two_cgroups["pid"]
    need(subprocess.run(["unshare", "-C", "true"]).returncode == 0, "needs unshare -C")
    mem = probe_in(b.dir, "unshare", "-C")
    need(not mem["oom_log_status"].startswith("unreadable"), "needs the kernel log")
    assert mem["cgroup"]["namespace"] == "own"
    assert mem["oom_log"] == []
    assert pid in [k["pid"] for k in mem["oom_log_elsewhere"]]
    assert mem["oom_kills"] == int(oom_control(b.dir)["oom_kill"]) == 0
    assert any("cgroup namespace" in n for n in mem["notes"])
    # found below the /../.. mount root by its pid, not read at the hierarchy's root
    assert mem["cgroup"]["path"] == b.path


def test_a_kernel_outside_the_wizards_cgroup(tmp_path):
    with child_cgroup(300 * MiB, "wizard-kern") as k_cg:
        conn = tmp_path / "kernel-5e1c2a3b-0000-4000-8000-00000000abcd.json"
        conn.write_text(json.dumps({"kernel_name": "python3", "key": "never-shown"}))
        argv = [sys.executable, "-c", KERNEL, "60", "-f", str(conn)]
        kernel = subprocess.Popen(
            ["sh", "-c", MOVE_AND_RUN, "sh", str(k_cg.dir), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert kernel.stdout.readline().strip() == "ready"
            cli = [sys.executable, "-m", "wizard", "--no-input"]
            report = json.loads(
                subprocess.run(
                    [*cli, "--json"], capture_output=True, text=True, env=env(), timeout=120
                ).stdout
            )
            text = subprocess.run(cli, capture_output=True, text=True, env=env(), timeout=120)
        finally:
            kernel.stdin.write("\n")
            kernel.stdin.close()
            kernel.wait(timeout=30)
    (k,) = [k for k in report["kernels"] if k["pid"] == kernel.pid]
    assert k["cgroup"]["path"] == k_cg.path
    assert k["cgroup"]["limit_bytes"] == k_cg.limit
    assert k_cg.path in [c["path"] for c in report["memory"]["kernel_cgroups"]]
    (row,) = [r for r in text.stdout.splitlines() if r.split()[:1] == [str(kernel.pid)]]
    share = int(next(w for w in row.split() if w.endswith("%"))[:-1])
    assert 15 <= share <= 35  # ~60 MiB of its own 300 MiB
    assert "never-shown" not in text.stdout + json.dumps(report)


HOG_KERNEL = """\
import os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
hog = b"x" * (300 * 1024 * 1024)
"""


@pytest.mark.parametrize("where", ["parent", "sibling"])
def test_victim_named_after_a_server_restart(tmp_path, where):
    """A kernel killed in its cgroup, restarted at once with the same connection file;
    the wizard run from the cgroup above it, or from a terminal in a sibling cgroup."""
    with child_cgroup(100 * MiB, "wizard-victim") as cg, child_cgroup(1 << 30, "wizard-t") as t:
        conn = tmp_path / "kernel-7e1c2a3b-0000-4000-8000-00000000beef.json"
        session = str(tmp_path / "big.ipynb")
        conn.write_text(json.dumps({"kernel_name": "python3", "jupyter_session": session}))
        time.sleep(2.0)  # the file predates both processes (start times are to the tick)
        killed = subprocess.Popen(
            [sys.executable, "-c", HOG_KERNEL, str(cg.dir), "-f", str(conn)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        killed_pid = killed.pid
        assert killed.wait(timeout=120) == -9
        argv = [sys.executable, "-c", KERNEL, "5", "-f", str(conn)]
        restarted = subprocess.Popen(
            ["sh", "-c", MOVE_AND_RUN, "sh", str(cg.dir), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert restarted.stdout.readline().strip() == "ready"
            cli = [sys.executable, "-m", "wizard", "--json", "--no-input"]
            if where == "sibling":
                done = run_inside(t.dir, *cli)
            else:
                done = subprocess.run(cli, capture_output=True, text=True, env=env(), timeout=120)
        finally:
            restarted.stdin.write("\n")
            restarted.stdin.close()
            restarted.wait(timeout=30)
    report = json.loads(done.stdout)
    need(not report["memory"]["oom_log_status"].startswith("unreadable"), "needs the kernel log")
    (oom,) = [f for f in report["findings"] if f["id"] == "oom-kills-recorded"]
    assert oom["message"].startswith("big.ipynb's kernel was likely killed by the OOM killer at")
    assert "of its 100 MiB limit" in oom["message"], oom["message"]
    assert f"kernel pid {restarted.pid} started" in oom["message"]
    mem = report["memory"]
    if where == "sibling":  # not the wizard's kill: named, never counted as its own
        assert killed_pid not in [k["pid"] for k in mem["oom_log"]]
        assert killed_pid in [k["pid"] for k in mem["oom_log_kernels"]]
        assert mem["oom_kills"] == 0
