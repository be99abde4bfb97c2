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
