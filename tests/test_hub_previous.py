"""What the next server says of a previous server killed whole with its kernels
(wizard.server.previous), from a history database as the recorder leaves it."""

import json
import sqlite3

import pytest

from wizard.server.previous import previous_server
from wizard.system import historydb

MIB = 1 << 20
T0 = 1_800_000_000.0
START = T0 + 600  # the new server starts ten minutes after the last record


def _db(tmp_path, usage, deaths=(), oom_kills=0, t0=T0):
    """Two kernels sampled every 2 s for a minute up to T0, the cgroup with them."""
    path = tmp_path / "history.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(historydb.SCHEMA)
    for row, (pid, nb) in enumerate(
        [(4101, "/home/alice/big.ipynb"), (4102, "/home/alice/b.ipynb")], 1
    ):
        conn.execute(
            "INSERT INTO kernels VALUES (?, ?, ?, ?, ?, 'python3', '/kubepods/pod1', ?)",
            (row, pid, t0 - 900, f"k{row}", nb, t0 - 900),
        )
        for i in range(30):
            conn.execute("INSERT INTO samples VALUES (?, ?, ?)", (row, t0 - 60 + 2 * i, 150 * MIB))
    for i in range(30):
        conn.execute(
            "INSERT INTO cgroup_samples VALUES (?, '/kubepods/pod1', ?, ?, ?)",
            (t0 - 60 + 2 * i, usage, 400 * MIB, oom_kills),
        )
    for pid, cause in deaths:
        conn.execute(
            "INSERT INTO deaths (time, pid, cause, started) VALUES (?, ?, ?, ?)",
            (t0 + 1, pid, cause, t0 - 900),
        )
    conn.commit()
    conn.close()
    return str(path)


def test_killed_near_its_limit_is_a_likely_oom_kill(tmp_path):
    got = previous_server(_db(tmp_path, usage=396 * MIB), START)
    assert got.stopped_cleanly is False and got.certainty == "likely", got
    assert got.cause == "oom-kill" and sorted(got.notebooks) == ["b.ipynb", "big.ipynb"]
    text = got.message()
    assert text.startswith("Your previous server stopped without shutting down its kernels")
    assert "2 kernel(s) ended with it" in text
    assert "396 MiB of its 400 MiB limit (99%)" in text, text
    assert "most likely ran out of memory" in text and "nothing on record proves it" in text


def test_the_kernel_log_proves_it(tmp_path):
    got = previous_server(
        _db(tmp_path, usage=396 * MIB), START, kernel_log_kills=[{"pid": 4101, "time": T0 + 1}]
    )
    assert got.certainty == "proved" and got.cause == "oom-kill", got
    assert "the kernel log names pid 4101 as killed out of memory" in got.message()


def test_the_same_cgroups_count_proves_it(tmp_path):
    db = _db(tmp_path, usage=200 * MIB, oom_kills=3)
    got = previous_server(db, START, oom_kills_now=4, cgroup="/kubepods/pod1")
    assert got.certainty == "proved", got
    assert "rose from 3 to 4" in got.message()
    # another cgroup's count says nothing of this one
    other = previous_server(db, START, oom_kills_now=4, cgroup="/kubepods/pod2")
    assert other.certainty == "unknown" and other.cause is None


def test_far_from_the_limit_it_says_it_does_not_know(tmp_path):
    got = previous_server(_db(tmp_path, usage=120 * MIB), START)
    assert got.stopped_cleanly is False and got.certainty == "unknown" and got.cause is None
    assert "Memory was not near the limit" in got.message()


def test_a_server_that_shut_its_kernels_down_says_nothing(tmp_path):
    db = _db(tmp_path, usage=396 * MIB, deaths=[(4101, "shutdown"), (4102, "shutdown")])
    got = previous_server(db, START)
    assert got.stopped_cleanly is True and got.message() == ""


def test_kernels_still_running_elsewhere_are_not_orphans(tmp_path):
    db = _db(tmp_path, usage=396 * MIB)
    got = previous_server(db, START, alive=lambda pid, started: pid == 4102)
    assert got.notebooks == ["big.ipynb"]


@pytest.mark.parametrize("make", ["none", "empty"])
def test_nothing_recorded_says_nothing(tmp_path, make):
    path = tmp_path / "history.sqlite3"
    if make == "empty":
        conn = sqlite3.connect(path)
        conn.executescript(historydb.SCHEMA)
        conn.close()
    got = previous_server(str(path), START)
    assert got.stopped_cleanly is None and got.message() == ""


def test_ends_a_watcher_saw_as_server_gone_went_with_the_server(tmp_path):
    db = _db(tmp_path, usage=396 * MIB, deaths=[(4101, "unknown"), (4102, "shutdown")])
    conn = sqlite3.connect(db)
    conn.execute("UPDATE deaths SET requested = 'server-gone' WHERE pid = 4101")
    conn.execute("UPDATE deaths SET requested = 'shutdown' WHERE pid = 4102")
    conn.commit()
    conn.close()
    got = previous_server(db, START)
    assert got.stopped_cleanly is False and got.notebooks == ["big.ipynb"], got


def test_the_orphans_own_cgroup_gives_the_memory(tmp_path):
    db = _db(tmp_path, usage=396 * MIB)
    conn = sqlite3.connect(db)  # another server's cgroup, sampled later, nearly empty
    conn.execute(
        "INSERT INTO cgroup_samples VALUES (?, '/kubepods/pod2', ?, ?, 0)",
        (T0 + 5, 10 * MIB, 400 * MIB),
    )
    conn.commit()
    conn.close()
    got = previous_server(db, START)
    assert got.usage_bytes == 396 * MIB and got.certainty == "likely", got


def test_the_api_answer_names_every_field_and_the_section(tmp_path):
    from wizard.server import api, shapes

    got = api.previous_answer(
        previous_server(_db(tmp_path, usage=396 * MIB), START), "https://docs.example/kw/"
    )
    assert set(got) == set(shapes.PreviousAnswer.__annotations__)
    assert got["certainty"] == "likely" and sorted(got["notebooks"]) == ["b.ipynb", "big.ipynb"]
    assert got["message"].startswith("Your previous server stopped without shutting down")
    assert got["url"] == "https://docs.example/kw/fleet.html#fleet-oom-group"
    quiet = api.previous_answer(previous_server(str(tmp_path / "none.sqlite3"), START))
    assert quiet["message"] == "" and quiet["stopped_cleanly"] is None


@pytest.mark.server
def test_the_next_server_tells_of_its_predecessor(jupyter_server_factory, tmp_path):
    """A real server started on the history its predecessor left: its log says it once
    and ``GET /api/kernel-wizard/previous`` answers it; the predecessor's pids are not
    this machine's processes of the same start, so both kernels went with it."""
    import time

    t0 = time.time() - 300  # the last record, five minutes before this start
    db = _db(tmp_path, usage=396 * MIB, t0=t0)
    server = jupyter_server_factory(
        extra_args=['--ServerApp.jpserver_extensions={"wizard.server_ext": True}'],
        env={"WIZARD_DB": db, "WIZARD_DOCS_URL": "https://docs.example/kw/"},
    )
    got = server.api("GET", "api/kernel-wizard/previous")
    assert got["stopped_cleanly"] is False and got["certainty"] == "likely", got
    assert t0 <= got["started"] <= time.time() and got["last_record"] == t0 - 2  # the last sample
    assert "2 kernel(s) ended with it" in got["message"]
    assert got["url"] == "https://docs.example/kw/fleet.html#fleet-oom-group"
    assert server.log().count("Your previous server stopped without shutting down") == 1
    assert server.token not in json.dumps(got)


def _exits(db, rows):
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO server_exits VALUES (?, 999, ?, ?)", rows)
    conn.commit()
    conn.close()


def test_kernels_left_by_a_server_that_exited_are_not_orphans(tmp_path):
    """A server stopped by a SIGINT with no terminal exits without shutting its kernels
    down: it records so, and the next server does not take that for a kill."""
    db = _db(tmp_path, usage=396 * MIB)
    _exits(db, [(T0 + 1, 4101, T0 - 900), (T0 + 1, 4102, T0 - 899.5)])
    got = previous_server(db, START)
    assert got.stopped_cleanly is True and got.message() == "", got


def test_an_exit_record_names_its_own_kernels_only(tmp_path):
    db = _db(tmp_path, usage=396 * MIB)
    # 4101 under another start (a reused pid), and an exit after this server started
    _exits(db, [(T0 + 1, 4101, T0 - 300), (START + 5, 4102, T0 - 900)])
    got = previous_server(db, START)
    assert got.stopped_cleanly is False and sorted(got.notebooks) == ["b.ipynb", "big.ipynb"]


def test_a_database_from_before_exit_records_reads_as_before(tmp_path):
    db = _db(tmp_path, usage=396 * MIB)
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE server_exits")
    conn.commit()
    conn.close()
    got = previous_server(db, START)
    assert got.stopped_cleanly is False and got.certainty == "likely", got


def test_a_database_without_tables_yet_says_nothing(tmp_path):
    path = tmp_path / "history.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    got = previous_server(str(path), START)
    assert got.stopped_cleanly is None and got.message() == ""


def _wait_gone(pid, timeout):
    import os
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _sampled_kernel(db, pid, timeout=30.0):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        conn = historydb.connect_ro(db)
        if conn is not None:
            try:
                row = conn.execute(
                    "SELECT k.started FROM kernels k JOIN samples s ON s.kernel = k.id"
                    " WHERE k.pid = ? LIMIT 1",
                    (pid,),
                ).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                conn.close()
            if row:
                return row[0]
        time.sleep(0.2)
    raise AssertionError(f"kernel pid {pid} never sampled into {db}")


@pytest.mark.server
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_real_server_stopped_without_its_kernels(jupyter_server_factory, tmp_path, how):
    """A real server with the extension: a SIGINT with no terminal (how JupyterHub's
    local spawners stop a server) ends it without shutting its kernel down, and it says
    so before it goes; a SIGKILL leaves no such record, and the kernel is an orphan."""
    import os
    import signal
    import time

    db = str(tmp_path / "history.sqlite3")
    server = jupyter_server_factory(
        extra_args=['--ServerApp.jpserver_extensions={"wizard.server_ext": True}'],
        env={"WIZARD_DB": db, "WIZARD_WATCH_INTERVAL": "0.5"},
    )
    kid = server.create_session("left.ipynb")["kernel"]["id"]
    pid = server.kernel_pid(kid)
    started = _sampled_kernel(db, pid)
    server.proc.send_signal(getattr(signal, how))
    server.proc.wait(30)
    assert "Interrupted" in server.log() or how == "SIGKILL"
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT server_pid, pid, started FROM server_exits").fetchall()
    ends = conn.execute("SELECT cause FROM deaths WHERE pid = ?", (pid,)).fetchall()
    conn.close()
    if how == "SIGINT":
        assert [(r[0], r[1]) for r in rows] == [(server.pid, pid)], rows
        assert abs(rows[0][2] - started) < 2 and ends == []  # it left the kernel running
    else:
        assert rows == []
    gone = _wait_gone(pid, 10.0)  # ipykernel's parent poller ends it
    if not gone:
        os.kill(pid, signal.SIGKILL)
    assert gone, f"kernel {pid} outlived its server by 10 s"
    got = previous_server(db, time.time())
    if how == "SIGINT":
        assert got.stopped_cleanly is True and got.message() == "", got
    else:
        assert got.stopped_cleanly is False and got.notebooks == ["left.ipynb"], got
