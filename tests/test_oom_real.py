"""A real OOM kill in a child cgroup (v1 memory controller), seen by the memory probe.

A child cgroup of this process's own memory cgroup gets a 100 MB limit (memory and
memory+swap, so swap cannot absorb it); a child Python moves itself in and
allocates 300 MB, and must die of SIGKILL. Then the probe, run inside that cgroup,
must report the limit, the kill count and the killed pid from the kernel log.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need

REPO = Path(__file__).resolve().parent.parent
V1_MEMORY = Path("/sys/fs/cgroup/memory")
LIMIT = 100 * 1024 * 1024

pytestmark = pytest.mark.oom

ALLOCATE = """\
import os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
hog = b"x" * (300 * 1024 * 1024)  # every page written: all of it is charged
print("survived", len(hog))
"""

MOVE_AND_RUN = 'echo $$ > "$1/cgroup.procs" && exec "$2" -c "$3"'
PROBE = (
    "import json, wizard.probes.memory as m, wizard.sysroot as s; "
    "print(json.dumps(m.probe(s.SysRoot())))"
)


def own_memory_cgroup():
    """This process's v1 memory cgroup path, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if "memory" in ctrls.split(","):
                    return path
    except OSError:
        return None
    return None


def writable_memory_controller():
    own = own_memory_cgroup()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or own is None:
        return None
    d = V1_MEMORY / own.lstrip("/")
    if (d / "memory.limit_in_bytes").exists() and os.access(d, os.W_OK):
        return own, d
    return None


def cleanup(cg, parent):
    """Move whatever is left into the parent cgroup and remove ``cg``."""
    if not cg.exists():
        return
    for _ in range(50):
        try:
            pids = (cg / "cgroup.procs").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            try:
                (parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # the process has exited meanwhile
        try:
            cg.rmdir()
            return
        except OSError:
            time.sleep(0.1)
    cg.rmdir()  # one last time: let the error show


def test_oom_kill_is_seen_by_the_probe():
    found = writable_memory_controller()
    need(found, "needs root and a writable cgroup v1 memory controller")
    own, parent = found
    name = f"wizard-test-{os.getpid()}"
    cg = parent / name
    cg.mkdir()
    try:
        (cg / "memory.limit_in_bytes").write_text(str(LIMIT))
        if (cg / "memory.memsw.limit_in_bytes").exists():
            (cg / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
        limit = int((cg / "memory.limit_in_bytes").read_text())
        assert 0 < LIMIT - limit < 4096 * 16 or limit == LIMIT

        started = time.time()
        hog = subprocess.Popen(
            [sys.executable, "-c", ALLOCATE, str(cg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = hog.communicate(timeout=120)
        finally:
            if hog.returncode is None:
                hog.kill()
                hog.wait()
        assert hog.returncode == -9, (hog.returncode, stdout, stderr[-2000:])
        control = dict(
            line.split() for line in (cg / "memory.oom_control").read_text().splitlines()
        )
        assert int(control["oom_kill"]) >= 1

        # the probe, run by a process inside the cgroup (moved in before Python starts)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        done = subprocess.run(
            ["sh", "-c", MOVE_AND_RUN, "sh", str(cg), sys.executable, PROBE],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout)
        path = own.rstrip("/") + "/" + name
        assert out["errors"] == []
        assert out["limit_bytes"] == limit
        assert out["limit_source"] == f"cgroup v1 {path}"
        assert out["cgroup"]["path"] == path and out["cgroup"]["limit_path"] == path
        # (failcnt is not asserted: kernel 6.18 here leaves v1 failcnt at 0 after a kill)
        assert out["oom_kills"] >= 1
        assert out["used_bytes"] < limit and out["available_bytes"] > 0
        assert out["peak_bytes"] >= limit - 4096 * 64  # the hog filled the cgroup
        assert out["oom_log_status"] == "ok"
        ours = [k for k in out["oom_log"] if k["pid"] == hog.pid]
        assert ours, out["oom_log"]
        kill = ours[-1]
        assert kill["cgroup_oom"] is True
        assert kill["name"].startswith("python")
        assert 50 * 1024 * 1024 < kill["rss_bytes"] <= limit + 16 * 1024 * 1024
        assert kill["total_vm_bytes"] > 300 * 1024 * 1024
        assert started - 60 < kill["time"] < time.time() + 60
    finally:
        cleanup(cg, parent)
