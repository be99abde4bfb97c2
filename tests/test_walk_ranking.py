"""One ranking: the walk-through on a real terminal and --no-input lead with the same
finding, here a recorded SIGSEGV that is newer than an out-of-memory kill in the
kernel log."""

import json
import subprocess
import sys
import time

import pytest
from test_cli import make_tree
from test_tty import REPO, Terminal

from wizard.engines import store as store_mod

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")

HOURS = 3600


def kernel_log(oom_usec):
    return (
        f"6,1200,{oom_usec},-;python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0\n"
        f"4,1201,{oom_usec + 100},-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
        "cpuset=/,mems_allowed=0,oom_memcg=/job,task_memcg=/job,task=python3,pid=2230,uid=1000\n"
        f"3,1202,{oom_usec + 200},-;Memory cgroup out of memory: Killed process 2230 (python3) "
        "total-vm:323784kB, anon-rss:1801888kB, file-rss:4608kB, shmem-rss:512kB, UID:1000 "
        "pgtables:300kB oom_score_adj:0\n"
    )


@pytest.fixture
def env(tmp_path):
    """The test_cli tree, booted 3 days ago; an OOM kill 3 hours ago in the kernel log;
    a SIGSEGV of ~/seg.ipynb's kernel recorded 10 minutes ago."""
    import os

    root = make_tree(tmp_path / "root")
    now = time.time()
    (root / "proc" / "stat").write_text(f"cpu 1 2 3 4\nbtime {int(now - 72 * HOURS)}\n")
    (root / "dev").mkdir()
    (root / "dev" / "kmsg").write_text(kernel_log(int((72 - 3) * HOURS * 1e6)))
    db = root / "home/user/.local/share/kernel-wizard/history.sqlite3"
    db.parent.mkdir(parents=True)
    s = store_mod.Store(str(db))
    s.record_death(
        {
            "pid": 4242,
            "kernel_id": "kid-4242",
            "notebook": "/home/user/seg.ipynb",
            "returncode": -11,
            "status_source": "server",
            "time": now - 600,
        }
    )
    s.close()
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WIZARD", "FORCE_COLOR", "JUPYTER", "COCALC"))
    }
    e.update(
        TERM="xterm",
        NO_COLOR="1",
        LANG="C.UTF-8",
        WIZARD_SYSROOT=str(root),
        HOME="/home/user",
        JUPYTER_RUNTIME_DIR="/run/jupyter",
        PYTHONPATH=str(REPO),
    )
    return e


def test_walk_through_and_no_input_lead_with_the_newer_sigsegv(env):
    report = subprocess.run(
        [sys.executable, "-m", "wizard", "--no-input", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ids = [f["id"] for f in json.loads(report.stdout)["findings"]]
    assert ids[:2] == ["recorded-native-crash", "oom-kills-recorded"]

    t = Terminal("--no-input", env=env)
    assert t.finish() == 1
    first = t.screen.split("What to do", 1)[1].strip().splitlines()[0]
    assert "1. [✗] ~/seg.ipynb's kernel (pid 4242) died at " in first
    assert first.endswith("; killed by SIGSEGV.")
    lead = first.split("[✗] ", 1)[1]

    t = Terminal(env=env)
    t.expect(r"Choose 1-\d")
    t.type("\n")  # I don't know what the message said
    t.expect(r"\[y/N\]")
    t.type("n\n")
    t.expect(r"Step 3 of 4: Is it memory\?")
    t.expect(r"Enter to skip\)?: ")
    t.type("\n")
    code = t.finish(timeout=60)
    assert code == 1
    step3 = t.screen.split("Step 3 of 4", 1)[1].split("Step 4 of 4", 1)[0]
    assert "Yes, memory is the likely cause" not in step3
    assert f"but the evidence points first to: {lead}" in " ".join(step3.split())
    assert "Traceback" not in t.screen
