"""The history database and ``python -m wizard history``: what a user reads after a crash.

These use a real SQLite database written by the recorder's own Store, and the
real command (through ``python -m wizard history`` once the CLI lists it).
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wizard.diagnosis import deathtext
from wizard.diagnosis import endings as deaths
from wizard.engines import store as store_mod
from wizard.report import sparkline
from wizard.system import historydb, kernlog

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
GiB = 1 << 30


def wizard_cmd(name):
    return [sys.executable, "-m", "wizard", name]


def run(name, *args, env=None):
    e = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    e.update(env or {})
    return subprocess.run(
        [*wizard_cmd(name), *args], capture_output=True, text=True, env=e, cwd=REPO, timeout=60
    )


def kernel(pid, notebook, started=1000.0, kernel_id=None):
    return {
        "pid": pid,
        "started": started,
        "kernel_id": kernel_id or f"kid-{pid}",
        "notebook": notebook,
        "kernel_name": "python3",
        "cgroup": "/x",
        "first_seen": time.time() - 300,
    }


@pytest.fixture
def store(tmp_path):
    s = store_mod.Store(str(tmp_path / "history.sqlite3"))
    yield s
    s.close()


def test_no_database_is_no_history_quickly_and_without_sqlite(tmp_path):
    """The main command calls recent_deaths() on every run: with no database it must cost
    nothing (sqlite3 is not even imported) and return []. (Its speed: benchmarks/.)"""
    code = (
        "import sys; from wizard.system import historydb; "
        f"d = historydb.recent_deaths({str(tmp_path / 'none.sqlite3')!r}); "
        "print(d, 'sqlite3' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=True,
    ).stdout.split()
    assert out == ["[]", "False"]


@pytest.mark.parametrize(
    "content", [b"", b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_a_damaged_or_foreign_file_gives_no_deaths_and_no_error(tmp_path, content):
    db = tmp_path / "history.sqlite3"
    db.write_bytes(content)
    assert historydb.recent_deaths(str(db)) == []
    errors = []
    assert historydb.recent_deaths(str(db), errors=errors) == []
    assert len(errors) == 1 and "\n" not in errors[0]


def test_history_without_database_says_how_to_start_the_recorder(tmp_path):
    done = run("history", "--db", str(tmp_path / "none.sqlite3"))
    assert done.returncode == 0, done.stderr
    assert "python -m wizard watch" in done.stdout
    assert "No history yet" in done.stdout
    done = run("history", "--json", env={"WIZARD_DB": str(tmp_path / "none.sqlite3")})
    report = json.loads(done.stdout)
    assert report["schema"] == "kernel-wizard-history/1"
    assert report["db_exists"] is False and report["deaths"] == []
    assert report["recorder"]["running"] is False


def test_bad_since_is_a_usage_error(tmp_path):
    done = run("history", "--since", "yesterday", "--db", str(tmp_path / "h.sqlite3"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--since" in done.stderr


# -- merging the reports of two recorders ------------------------------------------------


def test_watch_and_server_reports_of_one_oom_kill_make_one_row(store):
    k = kernel(4941, "/home/u/big.ipynb")
    now = time.time()
    with store.transaction():
        for i, rss in enumerate((200 * MiB, 900 * MiB, 1600 * MiB)):
            store.conn.execute(
                "INSERT INTO samples VALUES (?, ?, ?)", (store.kernel_row(k), now - 30 + i, rss)
            )
    # the server saw SIGKILL (exact) ...
    first = store.record_death(
        {
            "pid": 4941,
            "kernel_id": "kid-4941",
            "returncode": -9,
            "status_source": "server",
            "time": now,
            "recorded_by": "server",
            "notebook": "/home/u/big.ipynb",
        }
    )
    assert (first["cause"], first["signal"]) == ("signal", "SIGKILL")
    # ... the watch saw the cgroup's OOM count rise and knew the memory and limit
    merged = store.record_death(
        {"pid": 4941, "kernel_id": "kid-4941", "oom": "counter", "oom_checked": True,
         "time": now + 1.5, "rss_bytes": 1946 * MiB, "limit_bytes": 2 * GiB,
         "kernel_row": store.kernel_row(k), "recorded_by": "watch"}
    )  # fmt: skip
    assert merged["cause"] == "oom-kill" and merged["signal"] == "SIGKILL"
    rows = store.conn.execute("SELECT count(*) FROM deaths").fetchone()[0]
    assert rows == 1
    (d,) = historydb.recent_deaths(store.path)
    assert d["time"] == pytest.approx(now)  # the earliest report is the closest to the death
    assert d["exact"] is True and d["recorded_by"] == "server,watch"
    assert d["samples"] == [200 * MiB, 900 * MiB, 1600 * MiB, 1946 * MiB]
    line = deathtext.describe(d)
    assert line.startswith("/home/u/big.ipynb's kernel (pid 4941) died at ")
    assert line.endswith("holding 1.9 GiB of a 2.0 GiB limit; the OOM killer fired then")


def test_an_exact_segfault_is_not_blamed_on_a_concurrent_oom_kill(store):
    store.record_death({"pid": 7, "kernel_id": "k", "oom": "counter", "oom_checked": True})
    d = store.record_death(
        {"pid": 7, "kernel_id": "k", "returncode": -11, "status_source": "server"}
    )
    assert (d["cause"], d["signal"]) == ("signal", "SIGSEGV")


def test_a_shutdown_on_request_is_not_a_crash(store):
    d = store.record_death(
        {"pid": 8, "kernel_id": "k", "returncode": -9, "status_source": "zombie"}
    )
    assert d["cause"] == "signal"
    d = store.record_death({"pid": 8, "kernel_id": "k", "requested": "unlisted"})
    assert d["cause"] == "shutdown" and "SIGKILL" in d["detail"]


@pytest.mark.parametrize(
    ("evidence", "cause", "sig"),
    [
        ({}, "unknown", None),
        ({"returncode": -11, "status_source": "server"}, "signal", "SIGSEGV"),
        ({"returncode": 139, "status_source": "server"}, "signal", "SIGSEGV"),
        ({"returncode": 1, "status_source": "zombie"}, "exit", None),
        ({"returncode": -9, "status_source": "server", "oom_checked": True}, "signal", "SIGKILL"),
        ({"returncode": -9, "oom": "counter"}, "oom-kill", "SIGKILL"),
        ({"oom": "kernel-log", "requested": "shutdown"}, "oom-kill", "SIGKILL"),
        ({"requested": "shutdown", "returncode": 0}, "shutdown", None),
        ({"requested": "server-gone"}, "shutdown", None),
        ({"log_signal": "SIGSEGV"}, "signal", "SIGSEGV"),
        ({"log_signal": "SIGSEGV", "oom": "counter"}, "oom-kill", "SIGKILL"),
    ],
)
def test_cause_from_evidence(evidence, cause, sig):
    got = deaths.classify(evidence)
    assert got[:2] == (cause, sig)
    assert got[2]  # always a detail to show


def test_fault_lines_of_the_kernel_log():
    assert kernlog.parse_fault("python3[1234]: segfault at 0 ip 00007f sp 00007f error 4") == (
        1234,
        "SIGSEGV",
    )
    assert kernlog.parse_fault("traps: python3[99] general protection fault ip:4") == (
        99,
        "SIGSEGV",
    )
    assert kernlog.parse_fault("traps: a b[5] trap invalid opcode ip:1") == (5, "SIGILL")
    assert kernlog.parse_fault("python3[x]: segfault at 0") is None
    assert kernlog.parse_fault("Memory cgroup out of memory: Killed process 5") is None
    assert deaths.returncode_from_wait_status(11) == -11
    assert deaths.returncode_from_wait_status(0x8B) == -11  # core dumped
    assert deaths.returncode_from_wait_status(3 << 8) == 3


# -- bounded ----------------------------------------------------------------------------


def test_retention_drops_old_rows(store):
    now = time.time()
    old, new = kernel(1, "old.ipynb", started=1.0), kernel(2, "new.ipynb", started=2.0)
    store.write(now - 8 * 86400, [(old, 100)], [("/x", 1, 2, 0)], [{"pid": 1, "kernel_id": "a"}])
    store.conn.execute("UPDATE kernels SET first_seen = ? WHERE pid = 1", (now - 8 * 86400,))
    store.write(now, [(new, 200)], [("/x", 1, 2, 0)], [{"pid": 2, "kernel_id": "b"}])
    store.prune(now, force=True)
    c = store.conn
    assert c.execute("SELECT rss FROM samples").fetchall() == [(200,)]
    assert c.execute("SELECT pid FROM deaths").fetchall() == [(2,)]
    assert c.execute("SELECT pid FROM kernels").fetchall() == [(2,)]
    assert c.execute("SELECT count(*) FROM cgroup_samples").fetchone()[0] == 1


def test_size_cap_drops_the_oldest_samples_and_keeps_deaths(tmp_path):
    s = store_mod.Store(str(tmp_path / "h.sqlite3"), max_bytes=256 << 10)
    try:
        ks = [kernel(i, f"nb{i}.ipynb", started=float(i)) for i in range(50)]
        t0 = time.time() - 3600
        for n in range(200):
            s.write(t0 + n, [(k, n * 1000 + k["pid"]) for k in ks])
        s.record_death({"pid": 3, "kernel_id": "kid-3", "time": t0 + 199})
        assert s.used_bytes() > 256 << 10
        s.prune(time.time(), force=True)
        assert s.used_bytes() <= 256 << 10
        oldest, newest = s.conn.execute("SELECT min(time), max(time) FROM samples").fetchone()
        assert newest == t0 + 199 and oldest > t0  # the oldest went, the newest stayed
        assert s.conn.execute("SELECT count(*) FROM deaths").fetchone()[0] == 1
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        s.close()
    assert os.path.getsize(tmp_path / "h.sqlite3") <= (256 << 10) + 64 * 4096


# -- the command ---------------------------------------------------------------------


def test_history_lists_deaths_and_memory_per_notebook(store):
    now = time.time()
    big = kernel(4941, "/w/big.ipynb", started=1.0)
    small = kernel(4950, "/w/small.ipynb", started=2.0)
    for i in range(60):
        store.write(now - 300 + 5 * i, [(big, (100 + 30 * i) * MiB), (small, 50 * MiB)])
    store.record_death(
        {"pid": 4941, "kernel_id": "kid-4941", "notebook": "/w/big.ipynb", "time": now - 5,
         "oom": "kernel-log", "rss_bytes": 1900 * MiB, "limit_bytes": 2 * GiB,
         "kernel_row": store.kernel_row(big)}
    )  # fmt: skip
    store.record_death(
        {"pid": 4950, "kernel_id": "kid-4950", "notebook": "/w/small.ipynb", "time": now - 2,
         "requested": "unlisted", "rss_bytes": 50 * MiB}
    )  # fmt: skip

    done = run("history", "--json", "--db", store.path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [d["cause"] for d in report["deaths"]] == ["shutdown", "oom-kill"]  # newest first
    oom = report["deaths"][1]
    assert oom["notebook"] == "/w/big.ipynb" and oom["pid"] == 4941
    assert oom["rss_bytes"] == 1900 * MiB and oom["limit_bytes"] == 2 * GiB
    assert len(oom["samples"]) == historydb.SAMPLES_PER_DEATH
    assert oom["samples"][-1] == 1900 * MiB
    assert oom["samples"] == sorted(oom["samples"])
    nbs = {n["notebook"]: n for n in report["notebooks"]}
    assert nbs["/w/big.ipynb"]["peak_bytes"] == 1900 * MiB  # the last size before it died
    assert nbs["/w/big.ipynb"]["deaths"] == 1

    done = run("history", "--db", store.path, env={"PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "/w/big.ipynb's kernel (pid 4941) died at" in out
    assert "holding 1.9 GiB of a 2.0 GiB limit; the OOM killer fired then" in out
    assert "/w/small.ipynb's kernel (pid 4950)" in out and "shut down on request" in out
    assert "▁" in out and "█" in out  # the sparklines
    assert "Memory per notebook" in out

    only = json.loads(run("history", "--json", "--notebook", "small", "--db", store.path).stdout)
    assert [d["pid"] for d in only["deaths"]] == [4950]


def test_sparkline():
    assert sparkline.sparkline([0, 50, 100]) == "▁▅█"
    assert sparkline.sparkline([0, 50, 100], unicode=False) == "_+@"
    assert sparkline.sparkline([]) == ""
    assert sparkline.sparkline([5, 5]) == "██"


def test_recent_deaths_is_read_only_and_sees_a_live_writer(store):
    store.record_death({"pid": 11, "kernel_id": "k", "returncode": -6, "status_source": "server"})
    with store.transaction():  # a write in progress does not hide what is committed
        store.conn.execute("INSERT INTO samples VALUES (1, 1, 1)")
        (d,) = historydb.recent_deaths(store.path)
    assert d["signal"] == "SIGABRT" and d["samples"] == []
    with pytest.raises(sqlite3.OperationalError):
        historydb.connect_ro(store.path).execute("DELETE FROM deaths")
