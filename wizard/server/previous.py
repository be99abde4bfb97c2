"""What is known of the previous server in this home, when a server starts.

On a hub a user's server can be killed whole, with every kernel in it (an OOM kill
of a pod with ``memory.oom.group``, an eviction, a node lost): nothing inside it
can record that. The history database lives in the user's home, which survives, so
the next server to start finds there what its predecessor recorded last: the kernels
it was sampling, their memory, the cgroup's usage against its limit. Kernels that
were running in the last record and have no recorded end did not end through their
server: the previous server stopped without shutting them down. A server that ran to
its end records that it exits (``server_exits``, with the kernels it left running: a
SIGINT with no terminal, as JupyterHub's local spawners send, stops a server without
shutting its kernels down); those kernels ended after it, not with it.

``previous_server(db_path, started)`` reads that and says how sure it is:

- ``proved``: an OOM kill is on record for the time the server stopped: a kernel-log
  kill of one of those kernels' processes, or a rise of the cgroup's OOM-kill count
  (where the same cgroup is still readable);
- ``likely``: memory was at 90% of the limit or more in the last record, and nothing
  recorded the end;
- ``unknown``: the server stopped without shutting its kernels down, memory was not
  near the limit: something else ended it.

Nothing here reads the OS: the caller passes what it read (``kernel_log_kills``: the
kill records of ``wizard.system.kernlog``, ``oom_kills_now``: the cgroup's count).
"""

import sqlite3
from dataclasses import dataclass, field
from typing import Optional

from wizard.base import fmt
from wizard.system import historydb

NEAR_LIMIT = 0.9  # share of the limit that makes an OOM kill the likely end
RECENT = 120.0  # seconds: kernels sampled this long before the last record were running


@dataclass
class PreviousServer:
    """The previous server, as its records tell it."""

    stopped_cleanly: Optional[bool]  # None: nothing was running, nothing to tell
    last_record: Optional[float] = None  # epoch of its last record: it stopped after it
    started: Optional[float] = None  # this server's start: it had stopped before it
    notebooks: list = field(default_factory=list)  # kernels running, with no recorded end
    usage_bytes: Optional[int] = None
    limit_bytes: Optional[int] = None
    cause: Optional[str] = None  # "oom-kill" or None
    certainty: str = "unknown"  # proved, likely, unknown
    evidence: list = field(default_factory=list)

    def message(self):
        """One paragraph for the first page the user sees, or "" when there is nothing."""
        if self.stopped_cleanly is not False:
            return ""
        when = f"after {_clock(self.last_record)}, before {_clock(self.started)}"
        names = ", ".join(self.notebooks[:5]) + (" ..." if len(self.notebooks) > 5 else "")
        text = (
            f"Your previous server stopped without shutting down its kernels ({when}); "
            f"{len(self.notebooks)} kernel(s) ended with it: {names}."
        )
        if self.usage_bytes is not None and self.limit_bytes:
            share = fmt.percent(self.usage_bytes, self.limit_bytes)
            text += (
                f" Its last record: {fmt.size(self.usage_bytes)} of its "
                f"{fmt.size(self.limit_bytes)} limit ({share:.0f}%)."
            )
        if self.certainty == "proved":
            text += " It was killed for lack of memory: " + "; ".join(self.evidence) + "."
        elif self.certainty == "likely":
            text += (
                " It most likely ran out of memory and was killed with all its kernels"
                " (nothing on record proves it)."
            )
        else:
            text += (
                " Memory was not near the limit in its last record: something else ended it"
                " (the server stopped from outside, or its machine)."
            )
        return text


def _clock(t):
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "?"


def _last_records(conn, before):
    """``(last record time, [kernel rows last sampled near it], last cgroup sample)``."""
    last = conn.execute(
        "SELECT max(t) FROM (SELECT max(time) AS t FROM samples WHERE time < ?"
        " UNION ALL SELECT max(time) FROM cgroup_samples WHERE time < ?)",
        (before, before),
    ).fetchone()[0]
    if last is None:
        return None, [], None
    kernels = conn.execute(
        "SELECT k.id, k.pid, k.started, k.notebook, k.kernel_id, max(s.time), "
        "(SELECT rss FROM samples WHERE kernel = k.id ORDER BY time DESC LIMIT 1), k.cgroup "
        "FROM kernels k JOIN samples s ON s.kernel = k.id WHERE s.time < ? "
        "GROUP BY k.id HAVING max(s.time) >= ?",
        (before, last - RECENT),
    ).fetchall()
    cg = conn.execute(
        "SELECT time, path, usage, limit_bytes, oom_kills FROM cgroup_samples"
        " WHERE time < ? ORDER BY time DESC LIMIT 1",
        (before,),
    ).fetchone()
    return last, kernels, cg


def _cgroup_of(conn, before, paths):
    """The last sample of the cgroup(s) the orphaned kernels lived in, if any."""
    if not paths:
        return None
    marks = ", ".join("?" * len(paths))
    return conn.execute(
        "SELECT time, path, usage, limit_bytes, oom_kills FROM cgroup_samples"
        f" WHERE time < ? AND path IN ({marks}) ORDER BY time DESC LIMIT 1",
        (before, *sorted(paths)),
    ).fetchone()


def _end_on_record(conn, pid, started):
    """``(cause, requested)`` of the kernel's recorded end, or None."""
    return conn.execute(
        "SELECT cause, requested FROM deaths WHERE pid = ? AND (started IS NULL OR ? IS NULL"
        " OR abs(started - ?) < 2) ORDER BY time DESC LIMIT 1",
        (pid, started, started),
    ).fetchone()


def _left_by_an_exiting_server(conn, pid, started, before):
    """Whether a server that ran to its end (``server_exits``) left this kernel running."""
    try:
        row = conn.execute(
            "SELECT 1 FROM server_exits WHERE pid = ? AND time < ? AND (started IS NULL"
            " OR ? IS NULL OR abs(started - ?) < 2) LIMIT 1",
            (pid, before, started, started),
        ).fetchone()
    except sqlite3.OperationalError:  # a database from before the table: nothing known
        return False
    return row is not None


def _went_with_the_server(end):
    """No recorded end, or one a watcher saw as "its server stopped"."""
    return end is None or end[1] == "server-gone"


def previous_server(
    db_path, started, kernel_log_kills=(), oom_kills_now=None, cgroup=None, alive=None
):
    """What the history at ``db_path`` tells of the server that ran before ``started``.

    ``kernel_log_kills``: ``[{"pid", "time"}]`` OOM kills from the kernel log (where
    readable); ``oom_kills_now`` with ``cgroup``: the OOM-kill count that cgroup has now;
    ``alive(pid, started)``: true for a kernel still running (another server of the same
    home has it), which is then no orphan.
    """
    conn = historydb.connect_ro(db_path)
    if conn is None:
        return PreviousServer(stopped_cleanly=None, started=started)
    try:
        last, kernels, cg = _last_records(conn, started)
        orphans = [
            k
            for k in kernels
            if _went_with_the_server(_end_on_record(conn, k[1], k[2]))
            and not _left_by_an_exiting_server(conn, k[1], k[2], started)
            and not (alive and alive(k[1], k[2]))
        ]
        cg = _cgroup_of(conn, started, {k[7] for k in orphans if k[7]}) or cg
    except sqlite3.OperationalError:  # tables not made yet (a recorder is creating them)
        return PreviousServer(stopped_cleanly=None, started=started)
    finally:
        conn.close()
    if last is None or not kernels:
        return PreviousServer(stopped_cleanly=None, last_record=last, started=started)
    out = PreviousServer(
        stopped_cleanly=not orphans,
        last_record=last,
        started=started,
        notebooks=[(k[3] or k[4] or f"pid {k[1]}").rsplit("/", 1)[-1] for k in orphans],
    )
    if cg is not None and cg[2] is not None:
        out.usage_bytes, out.limit_bytes = cg[2], cg[3]
    else:
        out.usage_bytes = sum(k[6] or 0 for k in orphans) or None
    if not orphans:
        return out
    pids = {k[1] for k in orphans}
    for kill in kernel_log_kills:
        if kill.get("pid") in pids and (kill.get("time") or last) >= last - RECENT:
            out.evidence.append(f"the kernel log names pid {kill['pid']} as killed out of memory")
    same_cgroup = cg is not None and cgroup and cg[1] == cgroup and cg[4] is not None
    if same_cgroup and oom_kills_now is not None and oom_kills_now > cg[4]:
        out.evidence.append(f"the OOM-kill count of {cgroup} rose from {cg[4]} to {oom_kills_now}")
    if out.evidence:
        out.cause, out.certainty = "oom-kill", "proved"
    elif out.usage_bytes and out.limit_bytes and out.usage_bytes >= NEAR_LIMIT * out.limit_bytes:
        out.cause, out.certainty = "oom-kill", "likely"
    return out
