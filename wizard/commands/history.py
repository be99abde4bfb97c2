"""``python -m wizard history``: the kernel deaths the recorder saw, and memory over time.

Also the functions the main command uses: ``recent_deaths()`` (quick, never raises,
and ``sqlite3`` is imported only when the database exists), ``describe()`` (one line
per death) and ``sparkline()``.
"""

import os
import sys
import time

from wizard.base import exitcodes, fmt

SCHEMA = "kernel-wizard-history/1"  # of --json; bump when a field changes meaning
DB_NAME = "history.sqlite3"
APP_DIR = "kernel-wizard"
SPARK_UNICODE = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-=+*#@"
SAMPLES_PER_DEATH = 40  # points of memory kept with each death (the sparkline)
DEATH_WINDOW = 3600.0  # ... taken from the hour before it


def default_db_path(environ=None):
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


def lock_path(db_path):
    return db_path + ".lock"


def recorder_status(db_path=None):
    """``{"running": bool, "pid", "since", "where"}`` from the recorder's lock file.

    Read only: the lock itself is not touched, so a recorder starting meanwhile is
    never disturbed. ``running`` means the pid named there is alive and is the
    process that wrote it (same start time).
    """
    db_path = db_path or default_db_path()
    out = {"running": False, "pid": None, "since": None, "where": None}
    try:
        with open(lock_path(db_path), encoding="utf-8", errors="replace") as f:
            text = f.read(4096)
    except OSError:
        return out
    info = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        info[key.strip()] = value.strip()
    try:
        pid = int(info.get("pid", ""))
        since = float(info.get("since", ""))
    except ValueError:
        return out
    out.update(pid=pid, since=since, where=info.get("where") or None)
    out["running"] = _same_process(pid, info.get("start"))
    return out


def _same_process(pid, start):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read(4096)
    except FileNotFoundError:
        return False
    except OSError:
        return _exists(pid)
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return False
    return start is None or fields[19] == start


def _exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _connect_ro(db_path):
    """A read-only connection, or None when there is no database (sqlite3 not imported)."""
    if not os.path.isfile(db_path):
        return None
    import sqlite3
    from urllib.parse import quote

    conn = sqlite3.connect(f"file:{quote(db_path)}?mode=ro", uri=True, timeout=2.0)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _rows(conn, sql, args=()):
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _downsample(values, n):
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


def _death_dict(conn, d):
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


def read_deaths(conn, since):
    return [
        _death_dict(conn, d)
        for d in _rows(conn, "SELECT * FROM deaths WHERE time >= ? ORDER BY time DESC", (since,))
    ]


def recent_deaths(db_path=None, since_seconds=24 * 3600, limit=20, errors=None):
    """Kernel deaths recorded in the last ``since_seconds``, newest first.

    Each is ``{time, pid, notebook, kernel_id, kernel_name, cause, signal, exit_code,
    detail, rss_bytes, limit_bytes, usage_bytes, cgroup, exact, recorded_by, samples}``
    (``samples``: the kernel's memory before it died, oldest first). Returns [] at
    once when there is no database, and [] when it cannot be read: it never raises;
    pass a list as ``errors`` to get one line saying why it could not be read.
    """
    try:
        db_path = db_path or default_db_path()
        conn = _connect_ro(db_path)
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


def notebook_series(conn, since, points=48):
    """Memory over time per notebook: ``[{notebook, kernels, peak_bytes, last_bytes,
    last_time, deaths, samples}]``, the notebook that held the most first."""
    rows = conn.execute(
        "SELECT coalesce(k.notebook, k.kernel_id, 'pid ' || k.pid), s.time, s.rss, k.id "
        "FROM samples s JOIN kernels k ON k.id = s.kernel WHERE s.time >= ? ORDER BY s.time",
        (since,),
    ).fetchall()
    by_nb = {}
    for nb, t, rss, kid in rows:
        e = by_nb.setdefault(nb, {"times": [], "values": [], "kernels": set()})
        e["times"].append(t)
        e["values"].append(rss or 0)
        e["kernels"].add(kid)
    died = {}
    for (nb,) in conn.execute(
        "SELECT coalesce(notebook, nullif(kernel_id, ''), 'pid ' || pid) FROM deaths "
        "WHERE time >= ?",
        (since,),
    ):
        died[nb] = died.get(nb, 0) + 1
    out = []
    for nb, e in by_nb.items():
        out.append(
            {
                "notebook": nb,
                "kernels": len(e["kernels"]),
                "peak_bytes": max(e["values"]),
                "last_bytes": e["values"][-1],
                "last_time": e["times"][-1],
                "deaths": died.get(nb, 0),
                "first_time": e["times"][0],
                "samples": _bucketed(
                    e["times"], e["values"], e["times"][0], e["times"][-1], points
                ),
            }
        )
    out.sort(key=lambda x: -x["peak_bytes"])
    return out


def _bucketed(times, values, start, end, points):
    """``points`` values over [start, end]: each bucket's maximum, None where no sample."""
    span = max(end - start, 1e-9)
    out = [None] * points
    for t, v in zip(times, values):
        i = min(int((t - start) / span * points), points - 1)
        if i >= 0 and (out[i] is None or v > out[i]):
            out[i] = v
    # the first bucket with data onwards; gaps keep the value before them
    first = next((i for i, v in enumerate(out) if v is not None), None)
    if first is None:
        return []
    out = out[first:]
    last = out[0]
    for i, v in enumerate(out):
        if v is None:
            out[i] = last
        else:
            last = v
    return out


def short_path(path):
    """``~/x.ipynb`` for a path in the home directory; other paths as they are."""
    home = os.path.expanduser("~").rstrip("/")
    if path and home and path.startswith(home + "/"):
        return "~" + path[len(home) :]
    return path


def sparkline(values, unicode=True, lo=0):
    """A row of bars, one per value, scaled from ``lo`` (0) to the largest value."""
    bars = SPARK_UNICODE if unicode else SPARK_ASCII
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    top = max(vals)
    if top <= lo:
        return bars[0] * len(vals)
    n = len(bars) - 1
    return "".join(bars[max(0, min(n, round((v - lo) / (top - lo) * n)))] for v in vals)


def describe(d, now=None):
    """One line: "big.ipynb's kernel (pid 4941) died at 18:44:21 holding 1.9 GiB of a
    2.0 GiB limit; the OOM killer fired then"."""
    now = now or time.time()
    who = f"{short_path(d['notebook'])}'s kernel" if d.get("notebook") else "A kernel"
    stamp = time.localtime(d["time"])
    fmt_t = "%H:%M:%S" if now - d["time"] < 20 * 3600 else "%Y-%m-%d %H:%M:%S"
    text = f"{who} (pid {d['pid']}) died at {time.strftime(fmt_t, stamp)}"
    if d.get("rss_bytes") is not None:
        text += f" holding {fmt.size(d['rss_bytes'])}"
        if d.get("limit_bytes"):
            text += f" of a {fmt.size(d['limit_bytes'])} limit"
    cause = d.get("cause")
    if cause == "oom-kill":
        text += "; the OOM killer fired then"
    elif cause == "shutdown":
        text += "; it was shut down on request, not a crash"
    elif cause == "signal":
        text += f"; killed by {d.get('signal') or 'a signal'}"
        if d.get("signal") == "SIGKILL":
            text += (
                " (no OOM kill was recorded)" if "no OOM kill" in (d.get("detail") or "") else ""
            )
    elif cause == "exit":
        text += f"; it exited with code {d.get('exit_code')}"
    else:
        text += "; how, the recorder could not tell"
    return text


# ---------------------------------------------------------------------------
# The command


def build_parser():
    from wizard.commands.cli import new_parser

    p = new_parser(
        prog="python -m wizard history",
        description="List the kernel deaths the recorder (python -m wizard watch) saw, with "
        "their cause, and each notebook's memory over time.",
    )
    p.add_argument(
        "--since",
        default="7d",
        metavar="DURATION",
        help="how far back: 30m, 12h, 7d (default: 7d)",
    )
    p.add_argument("--notebook", metavar="NAME", help="only notebooks whose path contains NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--db", metavar="PATH", help="the database (default: $WIZARD_DB or the data dir)"
    )
    return p


def main(argv, ctx):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exitcodes.USAGE if exc.code else exitcodes.OK
    try:
        since = fmt.parse_duration(args.since)
    except ValueError:
        ctx.stderr.write(
            f"python -m wizard history: --since {args.since!r} is not a duration "
            "(e.g. 30m, 12h, 7d)\n"
        )
        return exitcodes.USAGE
    db = os.path.abspath(os.path.expanduser(args.db)) if args.db else default_db_path(ctx.environ)
    status = recorder_status(db)
    start = time.time() - since
    report = {
        "schema": SCHEMA,
        "db": db,
        "db_exists": os.path.isfile(db),
        "recorder": status,
        "since": start,
    }
    report["deaths"], report["notebooks"] = [], []
    error = None
    if report["db_exists"]:
        import sqlite3

        try:
            conn = _connect_ro(db)
            try:
                report["deaths"] = read_deaths(conn, start)
                report["notebooks"] = notebook_series(conn, start)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            error = f"cannot read {db}: {exc}"
    if args.notebook:
        report["deaths"] = [d for d in report["deaths"] if args.notebook in (d["notebook"] or "")]
        report["notebooks"] = [n for n in report["notebooks"] if args.notebook in n["notebook"]]
    if error:
        report["error"] = error
    if args.json:
        import json

        json.dump(report, ctx.stdout, indent=2)
        ctx.stdout.write("\n")
    else:
        write_text(ctx, report, args.since)
    ctx.stdout.flush()
    return exitcodes.PROBLEM if error else exitcodes.OK


def write_text(ctx, report, since_text):
    from wizard.report.text import Printer

    p = Printer(ctx)
    status = report["recorder"]
    if status["running"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["since"]))
        p.line(f"Recorder: running (pid {status['pid']}, since {when}).")
    else:
        p.line("Recorder: not running. Start it before the next crash: python -m wizard watch")
    if report.get("error"):
        p.line(f"{p.mark('error')} {report['error']}")
        return
    if not report["db_exists"]:
        p.line(f"No history yet ({report['db']} does not exist).")
        return
    p.line()
    deaths = report["deaths"]
    if deaths:
        p.line(p.bold(f"Kernel deaths in the last {since_text} ({len(deaths)})"))
        for d in deaths:
            severity = "info" if d["cause"] == "shutdown" else "problem"
            p.line(f"  {p.mark(severity)} {describe(d)}")
            spark = sparkline(d["samples"], unicode=p.marks["ok"] != "+")
            extra = f"cause: {d['cause']}"
            if d.get("detail"):
                extra += f" ({d['detail']})"
            p.line(f"      {extra}")
            if len(d["samples"]) > 1:
                p.line(f"      memory before: {spark} {fmt.size(d['samples'][-1])}")
    else:
        p.line(f"No kernel died in the last {since_text}.")
    notebooks = report["notebooks"]
    if notebooks:
        p.line()
        p.line(p.bold("Memory per notebook"))
        names = [short_path(n["notebook"]) for n in notebooks]
        width = min(max(len(x) for x in names), 40)
        for name, n in zip(names, notebooks):
            if len(name) > width:
                name = "..." + name[-width + 3 :]
            spark = sparkline(n["samples"], unicode=p.marks["ok"] != "+")
            died = f", died {n['deaths']}x" if n["deaths"] else ""
            p.line(f"  {name.ljust(width)}  {spark}  peak {fmt.size(n['peak_bytes'])}{died}")
    p.line()
    p.line(f"Database: {report['db']}")
