"""The recorder's database, open for writing: one transaction per sample, pruned as it goes.

SQLite in WAL mode; a fixed retention and a size cap. The tables are
``wizard.system.historydb.SCHEMA``, which the readers share.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from wizard.diagnosis import endings as deaths
from wizard.system.historydb import SCHEMA, SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite3
    from types import TracebackType

# A death as the recorder reports it: the evidence of wizard.diagnosis.endings plus pid,
# kernel_id, time, notebook, ... (the columns of the deaths table); a stored row likewise.
DeathRow = dict[str, Any]

RETENTION_SECONDS = 7 * 86400
MAX_BYTES = 64 << 20
PRUNE_EVERY = 600.0  # seconds between retention passes
SIZE_CHECK_EVERY = 60.0
# Columns of a death that merge as "the first known value wins" / by rank.
_PLAIN = (
    "notebook",
    "kernel_name",
    "limit_bytes",
    "usage_bytes",
    "cgroup",
    "started",
    "kernel_row",
    "log_signal",
)
_RANKS: dict[str, dict[str, int]] = {
    "status_source": {"server": 2, "zombie": 1},
    "requested": {"shutdown": 3, "restart": 3, "server-gone": 2, "unlisted": 1},
    "oom": {"kernel-log": 2, "counter": 1},
}


def _db_dir_ok(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, mode=0o700, exist_ok=True)


class Store:
    """The history database, open for writing. Every write is one transaction."""

    def __init__(
        self,
        path: str,
        retention: float = RETENTION_SECONDS,
        max_bytes: int = MAX_BYTES,
        name: str = "watch",
    ) -> None:
        import sqlite3

        _db_dir_ok(path)
        self.path = path
        self.retention = retention
        self.max_bytes = max_bytes
        self.name = name
        self.sqlite3 = sqlite3
        fresh = not os.path.exists(path) or os.path.getsize(path) == 0
        self.conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        if fresh:
            try:
                os.chmod(path, 0o600)
            except OSError:
                pass
            self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA journal_size_limit = 4194304")
        # executescript commits what is pending first: the script is its own transaction
        self.conn.executescript(
            "BEGIN IMMEDIATE;"
            + SCHEMA
            + f"INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}'); COMMIT;"
        )
        self._kernel_rows: dict[tuple[int, float | None], int] = {}  # (pid, started) -> kernels.id
        self._last_prune = 0.0
        self._last_size_check = 0.0

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def close(self) -> None:
        try:
            self.conn.close()
        except self.sqlite3.Error:
            pass

    # -- writing -------------------------------------------------------------

    def kernel_row(self, k: Mapping[str, Any]) -> int:
        """The kernels.id of a kernel dict (inserting it the first time). In a transaction."""
        key = (k["pid"], k.get("started"))
        row: Any = self._kernel_rows.get(key)  # an int once found or inserted
        if row is None:
            found = self.conn.execute(
                "SELECT id FROM kernels WHERE pid = ? AND started IS ? ORDER BY id DESC LIMIT 1",
                key,
            ).fetchone()
            if found:
                row = found[0]
            else:
                row = self.conn.execute(
                    "INSERT INTO kernels (pid, started, kernel_id, notebook, kernel_name, cgroup,"
                    " first_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        k["pid"],
                        k.get("started"),
                        k.get("kernel_id"),
                        k.get("notebook"),
                        k.get("kernel_name"),
                        k.get("cgroup"),
                        k.get("first_seen") or time.time(),
                    ),
                ).lastrowid
            self._kernel_rows[key] = row
        return int(row)

    def forget(self, pid: int, started: float | None) -> None:
        self._kernel_rows.pop((pid, started), None)

    def write(
        self,
        now: float,
        kernel_samples: Sequence[tuple[Mapping[str, Any], int | None]] = (),
        cgroup_samples: Sequence[Sequence[object]] = (),
        death_list: Sequence[DeathRow] = (),
    ) -> list[DeathRow]:
        """Store one sample: ``[(kernel dict, rss)]``, ``[(path, usage, limit, ooms)]``, deaths.

        Returns the deaths as stored (merged with what was there).
        """
        stored: list[DeathRow] = []
        if not (kernel_samples or cgroup_samples or death_list):
            return stored
        with self.transaction():
            for k, rss in kernel_samples:
                self.conn.execute(
                    "INSERT INTO samples VALUES (?, ?, ?)", (self.kernel_row(k), now, rss)
                )
            for c in cgroup_samples:
                self.conn.execute("INSERT INTO cgroup_samples VALUES (?, ?, ?, ?, ?)", (now, *c))
            for ev in death_list:
                stored.append(self._merge_death(ev if ev.get("time") else dict(ev, time=now)))
        return stored

    def record_death(self, ev: DeathRow) -> DeathRow:
        with self.transaction():
            return self._merge_death(ev)

    def _merge_death(self, ev: DeathRow) -> DeathRow:
        """Insert the death, or merge it into the row another report made (same pid and
        kernel id, within ten minutes). The cause is worked out again from all of it."""
        kid = ev.get("kernel_id") or ""
        t = ev.get("time") or time.time()
        cur = self.conn.execute(
            "SELECT * FROM deaths WHERE pid = ? AND kernel_id = ? AND abs(time - ?) < 600 "
            "ORDER BY id DESC LIMIT 1",
            (ev["pid"], kid, t),
        )
        row = cur.fetchone()
        old: DeathRow = dict(zip([d[0] for d in cur.description], row)) if row else {}
        new = dict(old)
        new.update({"pid": ev["pid"], "kernel_id": kid})
        new["time"] = min(x for x in (old.get("time"), t) if x is not None)
        for key in _PLAIN:
            if new.get(key) is None and ev.get(key) is not None:
                new[key] = ev[key]
        rss = [x for x in (old.get("rss_bytes"), ev.get("rss_bytes")) if x is not None]
        new["rss_bytes"] = max(rss) if rss else None
        seen = [x for x in (old.get("last_seen"), ev.get("last_seen")) if x is not None]
        new["last_seen"] = max(seen) if seen else None
        for key, rank in _RANKS.items():
            if rank.get(ev.get(key) or "", 0) > rank.get(old.get(key) or "", 0):
                new[key] = ev[key]
                if key == "status_source":
                    new["returncode"] = ev.get("returncode")
        if ev.get("oom_checked"):
            new["oom_checked"] = 1
        by = set(filter(None, (old.get("recorded_by") or "").split(",")))
        by.add(ev.get("recorded_by") or self.name)
        new["recorded_by"] = ",".join(sorted(by))
        cause, sig, detail = deaths.classify(new)
        new["cause"], new["signal"], new["detail"] = cause, sig, detail
        new["exit_code"] = deaths.describe_returncode(new.get("returncode"))[1]
        cols = [c for c in new if c != "id"]
        if old:
            self.conn.execute(
                "UPDATE deaths SET " + ", ".join(f"{c} = ?" for c in cols) + " WHERE id = ?",
                [new[c] for c in cols] + [old["id"]],
            )
        else:
            new["id"] = self.conn.execute(
                f"INSERT INTO deaths ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [new[c] for c in cols],
            ).lastrowid
        return new

    def record_server_exit(
        self, now: float, server_pid: int, left: Sequence[tuple[int, float | None]]
    ) -> None:
        """The server ``server_pid`` exits by itself now, leaving the kernels ``left``
        (``[(pid, started)]``) running; one row with pid NULL when it left none."""
        rows: list[tuple[float, int, int | None, float | None]] = [
            (now, server_pid, pid, started) for pid, started in left
        ] or [(now, server_pid, None, None)]
        with self.transaction():
            self.conn.executemany("INSERT INTO server_exits VALUES (?, ?, ?, ?)", rows)

    # -- keeping it small ----------------------------------------------------

    def used_bytes(self) -> int:
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        used: int = (pages - free) * size
        return used

    def prune(self, now: float, force: bool = False) -> bool:
        """Drop what is older than the retention; past the size cap, the oldest samples."""
        did = False
        if force or now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            cutoff = now - self.retention
            with self.transaction():
                self.conn.execute("DELETE FROM samples WHERE time < ?", (cutoff,))
                self.conn.execute("DELETE FROM cgroup_samples WHERE time < ?", (cutoff,))
                self.conn.execute("DELETE FROM deaths WHERE time < ?", (cutoff,))
                self.conn.execute("DELETE FROM server_exits WHERE time < ?", (cutoff,))
                self.conn.execute(
                    "DELETE FROM kernels WHERE first_seen < ? AND id NOT IN "
                    "(SELECT DISTINCT kernel FROM samples) AND id NOT IN "
                    "(SELECT kernel_row FROM deaths WHERE kernel_row IS NOT NULL)",
                    (cutoff,),
                )
            self._kernel_rows.clear()
            did = True
        if force or now - self._last_size_check >= SIZE_CHECK_EVERY:
            self._last_size_check = now
            for _ in range(8):
                if self.used_bytes() <= self.max_bytes:
                    break
                with self.transaction():
                    for table in ("samples", "cgroup_samples"):
                        n = self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                        self.conn.execute(
                            f"DELETE FROM {table} WHERE rowid IN "
                            f"(SELECT rowid FROM {table} ORDER BY rowid LIMIT ?)",
                            (max(n // 4, 1),),
                        )
                did = True
        if did:
            self.conn.execute("PRAGMA incremental_vacuum")
        return did


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error). Not re-entrant-safe
    by design: nested uses join the outer transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self.conn

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if not self.outer:
            return False
        if kind is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except Exception:  # the connection is gone: the error being raised says more
                if not isinstance(value, Exception):
                    raise
        return False
