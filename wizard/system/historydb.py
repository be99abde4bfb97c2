"""The recorder's SQLite database: where it lives, its tables, and the reads of it.

Writing is the recorder's (``wizard.engines.store``); everything here only reads,
with a read-only connection, and ``sqlite3`` is imported only when the database
exists, so the main report pays nothing without a recorder.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wizard.base.thresholds import DEATH_WINDOW

if TYPE_CHECKING:
    import sqlite3

    from wizard.base.shapes import Death

DB_NAME = "history.sqlite3"
APP_DIR = "kernel-wizard"
SAMPLES_PER_DEATH = 40  # points of memory kept with each death (the sparkline)
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS kernels (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    started REAL,
    kernel_id TEXT,
    notebook TEXT,
    kernel_name TEXT,
    cgroup TEXT,
    first_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS kernels_pid ON kernels (pid, started);
CREATE TABLE IF NOT EXISTS samples (
    kernel INTEGER NOT NULL,
    time REAL NOT NULL,
    rss INTEGER
);
CREATE INDEX IF NOT EXISTS samples_kernel ON samples (kernel, time);
CREATE TABLE IF NOT EXISTS cgroup_samples (
    time REAL NOT NULL,
    path TEXT NOT NULL,
    usage INTEGER,
    limit_bytes INTEGER,
    oom_kills INTEGER
);
CREATE TABLE IF NOT EXISTS deaths (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    pid INTEGER NOT NULL,
    kernel_id TEXT NOT NULL DEFAULT '',
    notebook TEXT,
    kernel_name TEXT,
    cause TEXT NOT NULL,
    signal TEXT,
    exit_code INTEGER,
    returncode INTEGER,
    status_source TEXT,
    requested TEXT,
    oom TEXT,
    oom_checked INTEGER,
    log_signal TEXT,
    rss_bytes INTEGER,
    limit_bytes INTEGER,
    usage_bytes INTEGER,
    cgroup TEXT,
    started REAL,
    last_seen REAL,
    kernel_row INTEGER,
    detail TEXT,
    recorded_by TEXT
);
-- A Jupyter server that exited by itself (its process ran to its end: a SIGINT with no
-- terminal skips its kernels' shutdown), with the kernels it left running: they end on
-- their own after it (ipykernel's parent poller), not with a server killed whole.
CREATE TABLE IF NOT EXISTS server_exits (
    time REAL NOT NULL,
    server_pid INTEGER NOT NULL,
    pid INTEGER,
    started REAL
);
CREATE INDEX IF NOT EXISTS deaths_pid ON deaths (pid);
CREATE INDEX IF NOT EXISTS deaths_time ON deaths (time);
"""


def default_db_path(environ: Mapping[str, str] | None = None) -> str:
    """``$WIZARD_DB``, else the user's data dir: ``$XDG_DATA_HOME/kernel-wizard/...``."""
    env = os.environ if environ is None else environ
    if env.get("WIZARD_DB"):
        return os.path.abspath(os.path.expanduser(env["WIZARD_DB"]))
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    elif sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    else:
        base = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, APP_DIR, DB_NAME)


def connect_ro(db_path: str) -> sqlite3.Connection | None:
    """A read-only connection, or None when there is no database (sqlite3 not imported)."""
    if not os.path.isfile(db_path):
        return None
    import sqlite3
    from urllib.parse import quote

    conn = sqlite3.connect(f"file:{quote(db_path)}?mode=ro", uri=True, timeout=2.0)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _rows(conn: sqlite3.Connection, sql: str, args: Sequence[object] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _downsample(values: Sequence[int], n: int) -> list[int]:
    """At most ``n`` values: the maximum of each of ``n`` equal runs (peaks survive)."""
    if len(values) <= n:
        return list(values)
    out = []
    step = len(values) / n
    for i in range(n):
        chunk = (
            values[int(i * step) : int((i + 1) * step)] or values[int(i * step) : int(i * step) + 1]
        )
        out.append(max(chunk))
    return out


def _death_dict(conn: sqlite3.Connection, d: dict[str, Any]) -> Death:
    samples = []
    if d.get("kernel_row") is None:
        found = conn.execute(
            "SELECT id FROM kernels WHERE pid = ? AND (kernel_id IS ? OR ? = '') "
            "ORDER BY id DESC LIMIT 1",
            (d["pid"], d["kernel_id"] or None, d["kernel_id"] or ""),
        ).fetchone()
        if found:
            d["kernel_row"] = found[0]
    if d.get("kernel_row") is not None:
        samples = [
            r[0]
            for r in conn.execute(
                "SELECT rss FROM samples WHERE kernel = ? AND time >= ? AND time <= ? "
                "AND rss IS NOT NULL ORDER BY time",
                (d["kernel_row"], d["time"] - DEATH_WINDOW, d["time"] + 5),
            )
        ]
    if d.get("rss_bytes") is not None and (not samples or samples[-1] != d["rss_bytes"]):
        samples.append(d["rss_bytes"])  # the last known size ends the line
    return {
        "time": d["time"],
        "pid": d["pid"],
        "notebook": d.get("notebook"),
        "kernel_id": d.get("kernel_id") or None,
        "kernel_name": d.get("kernel_name"),
        "cause": d["cause"],
        "signal": d.get("signal"),
        "exit_code": d.get("exit_code"),
        "detail": d.get("detail"),
        "rss_bytes": d.get("rss_bytes"),
        "limit_bytes": d.get("limit_bytes"),
        "usage_bytes": d.get("usage_bytes"),
        "cgroup": d.get("cgroup"),
        "exact": d.get("status_source") == "server",
        "recorded_by": d.get("recorded_by"),
        "samples": _downsample(samples, SAMPLES_PER_DEATH),
    }


def read_deaths(conn: sqlite3.Connection, since: float) -> list[Death]:
    return [
        _death_dict(conn, d)
        for d in _rows(conn, "SELECT * FROM deaths WHERE time >= ? ORDER BY time DESC", (since,))
    ]


def recent_deaths(
    db_path: str | None = None,
    since_seconds: float = 24 * 3600,
    limit: int = 20,
    errors: list[str] | None = None,
) -> list[Death]:
    """Kernel deaths recorded in the last ``since_seconds``, newest first.

    Each is ``{time, pid, notebook, kernel_id, kernel_name, cause, signal, exit_code,
    detail, rss_bytes, limit_bytes, usage_bytes, cgroup, exact, recorded_by, samples}``
    (``samples``: the kernel's memory before it died, oldest first). Returns [] at
    once when there is no database, and [] when it cannot be read: it never raises;
    pass a list as ``errors`` to get one line saying why it could not be read.
    """
    try:
        db_path = db_path or default_db_path()
        conn = connect_ro(db_path)
        if conn is None:
            return []
        try:
            return read_deaths(conn, time.time() - since_seconds)[:limit]
        finally:
            conn.close()
    except Exception as exc:  # promised: never raises (a damaged or foreign file is no history)
        if errors is not None:
            errors.append(f"kernel history {db_path} unreadable: {type(exc).__name__}: {exc}")
        return []


def notebook_series(
    conn: sqlite3.Connection, since: float, points: int = 48
) -> list[dict[str, Any]]:
    """Memory over time per notebook: ``[{notebook, kernels, peak_bytes, last_bytes,
    last_time, deaths, samples}]``, the notebook that held the most first."""
    rows = conn.execute(
        "SELECT coalesce(k.notebook, k.kernel_id, 'pid ' || k.pid), s.time, s.rss, k.id "
        "FROM samples s JOIN kernels k ON k.id = s.kernel WHERE s.time >= ? ORDER BY s.time",
        (since,),
    ).fetchall()
    by_nb: dict[str, dict[str, Any]] = {}
    for nb, t, rss, kid in rows:
        e = by_nb.setdefault(nb, {"times": [], "values": [], "kernels": set()})
        e["times"].append(t)
        e["values"].append(rss or 0)
        e["kernels"].add(kid)
    died: dict[str, int] = {}
    causes: dict[str, dict[str, int]] = {}
    for nb, t, cause, rss in conn.execute(
        "SELECT coalesce(notebook, nullif(kernel_id, ''), 'pid ' || pid), time, cause, "
        "rss_bytes FROM deaths WHERE time >= ? ORDER BY time",
        (since,),
    ):
        died[nb] = died.get(nb, 0) + 1
        by_cause = causes.setdefault(nb, {})
        by_cause[cause] = by_cause.get(cause, 0) + 1
        e = by_nb.setdefault(nb, {"times": [], "values": [], "kernels": set()})
        if rss is not None:  # the last size known before each death is part of the peak
            e["times"].append(t)
            e["values"].append(rss)
    out: list[dict[str, Any]] = []
    for nb, e in by_nb.items():
        order = sorted(range(len(e["times"])), key=e["times"].__getitem__)
        e["times"] = [e["times"][i] for i in order]
        e["values"] = [e["values"][i] for i in order]
        out.append(
            {
                "notebook": nb,
                "kernels": len(e["kernels"]),
                "peak_bytes": max(e["values"], default=None),
                "last_bytes": e["values"][-1] if e["values"] else None,
                "last_time": e["times"][-1] if e["times"] else None,
                "deaths": died.get(nb, 0),
                "causes": causes.get(nb, {}),
                "first_time": e["times"][0] if e["times"] else None,
                "samples": _bucketed(e["times"], e["values"], e["times"][0], e["times"][-1], points)
                if e["times"]
                else [],
            }
        )
    out.sort(key=lambda x: -(x["peak_bytes"] or 0))
    return out


def death_counts(
    db_path: str | None = None, since_seconds: float = 24 * 3600, errors: list[str] | None = None
) -> dict[str, int]:
    """``{cause: number}`` of the deaths recorded in the last ``since_seconds``: all of
    them, not a page of them. {} without a database; never raises."""
    try:
        db_path = db_path or default_db_path()
        conn = connect_ro(db_path)
        if conn is None:
            return {}
        try:
            return dict(
                conn.execute(
                    "SELECT cause, count(*) FROM deaths WHERE time >= ? GROUP BY cause",
                    (time.time() - since_seconds,),
                ).fetchall()
            )
        finally:
            conn.close()
    except Exception as exc:  # promised: never raises
        if errors is not None:
            errors.append(f"kernel history {db_path} unreadable: {type(exc).__name__}: {exc}")
        return {}


def _bucketed(
    times: Sequence[float], values: Sequence[int], start: float, end: float, points: int
) -> list[int]:
    """``points`` values over [start, end]: each bucket's maximum, None where no sample."""
    span = max(end - start, 1e-9)
    out: list[int | None] = [None] * points
    for t, v in zip(times, values):
        i = min(int((t - start) / span * points), points - 1)
        if i >= 0 and ((old := out[i]) is None or v > old):
            out[i] = v
    # the first bucket with data onwards; gaps keep the value before them
    first = next((i for i, v in enumerate(out) if v is not None), None)
    if first is None:
        return []
    filled: list[int] = []
    last = 0  # set by the first bucket, which has data
    for bucket in out[first:]:
        if bucket is not None:
            last = bucket
        filled.append(last)
    return filled
