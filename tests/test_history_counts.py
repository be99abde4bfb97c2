"""``history`` and the report count what the recorder stored: peaks with the deaths'
own memory, and every death by its cause (no page limit)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wizard.engines import store as store_mod

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def wizard(*args, db, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIZARD", "JUPYTER"))}
    env.update(PYTHONPATH=str(REPO), NO_COLOR="1", WIZARD_DB=str(db), HOME=str(home))
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def kernel(pid, notebook):
    return {
        "pid": pid,
        "started": 1000.0 + pid,
        "kernel_id": f"kid-{pid}",
        "notebook": notebook,
        "kernel_name": "python3",
        "cgroup": "/x",
        "first_seen": time.time() - 3000,
    }


@pytest.fixture
def history(tmp_path):
    """Five kernels of one notebook, each sampled small and dying holding ~300 MiB;
    then 25 SIGSEGV crashes and 3 shutdowns of another notebook."""
    db = tmp_path / "history.sqlite3"
    s = store_mod.Store(str(db))
    now = time.time()
    for i in range(5):
        k = kernel(100 + i, "/home/u/big.ipynb")
        s.write(now - 2000 + i * 100, [(k, 51 * MiB)])
        s.record_death(
            {
                "pid": k["pid"],
                "kernel_id": k["kernel_id"],
                "notebook": k["notebook"],
                "kernel_row": s.kernel_row(k),
                "oom": "counter",
                "oom_checked": True,
                "rss_bytes": (300 + i) * MiB,
                "time": now - 1990 + i * 100,
            }
        )
    for i in range(28):
        k = kernel(500 + i, "/home/u/crash.ipynb")
        s.write(now - 1000 + i * 10, [(k, 20 * MiB)])
        ev = {"pid": k["pid"], "kernel_id": k["kernel_id"], "notebook": k["notebook"]}
        if i < 3:
            ev.update(returncode=-9, status_source="zombie", requested="shutdown")
        else:
            ev.update(returncode=-11, status_source="server")
        s.record_death(dict(ev, time=now - 995 + i * 10, kernel_row=s.kernel_row(k)))
    s.close()
    home = tmp_path / "home"
    home.mkdir()
    return db, home


def test_history_peaks_include_the_deaths_and_counts_are_by_cause(history):
    db, home = history
    code, out = wizard("history", db=db, home=home)
    assert code == 0
    (big,) = [ln for ln in out.splitlines() if "big.ipynb" in ln and "peak" in ln]
    assert big.endswith("peak 304 MiB; 5 killed by the OOM killer")
    (crash,) = [ln for ln in out.splitlines() if "crash.ipynb" in ln and "peak" in ln]
    assert crash.endswith("peak 20 MiB; 25 killed by a signal, 3 shut down")

    code, out = wizard("history", "--json", db=db, home=home)
    nbs = {n["notebook"]: n for n in json.loads(out)["notebooks"]}
    assert nbs["/home/u/big.ipynb"]["peak_bytes"] == 304 * MiB
    assert nbs["/home/u/big.ipynb"]["causes"] == {"oom-kill": 5}
    assert nbs["/home/u/crash.ipynb"]["causes"] == {"signal": 25, "shutdown": 3}


def test_the_report_counts_every_death_of_the_day_by_cause(history):
    db, home = history
    _, out = wizard("--no-input", db=db, home=home)
    (line,) = [ln for ln in out.splitlines() if "Recorded deaths:" in ln]
    assert line.endswith(
        "(in the last day: 25 killed by a signal, 5 killed by the OOM killer, 3 shut down)"
    )
    assert "(20 in the last day)" not in out
