"""``python -m wizard history``: the kernel deaths the recorder saw, and memory over time."""

import os
import time

from wizard.base import exitcodes, fmt
from wizard.base.invocation import command
from wizard.commands.base import UsageError, new_parser, parse
from wizard.diagnosis.deathtext import describe, short_path
from wizard.report.printer import Printer
from wizard.report.sparkline import sparkline
from wizard.report.text import cause_counts
from wizard.system import historydb
from wizard.system.recorder_lock import recorder_status

NAME = "history"
SCHEMA = "kernel-wizard-history/1"  # of --json; bump when a field changes meaning
EXIT_CODES = {
    exitcodes.OK: "the history was read (or there is none yet)",
    exitcodes.PROBLEM: "the database exists but cannot be read",
    exitcodes.USAGE: "usage error (a bad --since)",
    exitcodes.INTERRUPTED: "interrupted (Ctrl-C)",
}


def build_parser():
    p = new_parser(
        NAME,
        f"List the kernel deaths the recorder ({command('watch')}) saw, with their cause, and "
        "each notebook's memory over time.",
        EXIT_CODES,
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
    args, code = parse(build_parser(), argv)
    if args is None:
        return code
    try:
        since = fmt.parse_duration(args.since)
    except ValueError:
        raise UsageError(f"--since {args.since!r} is not a duration (e.g. 30m, 12h, 7d)") from None
    db = (
        os.path.abspath(os.path.expanduser(args.db))
        if args.db
        else historydb.default_db_path(ctx.environ)
    )
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
            conn = historydb.connect_ro(db)
            try:
                report["deaths"] = historydb.read_deaths(conn, start)
                report["notebooks"] = historydb.notebook_series(conn, start)
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
    p = Printer(ctx)
    status = report["recorder"]
    if status["running"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["since"]))
        p.line(f"Recorder: running (pid {status['pid']}, since {when}).")
    else:
        p.line(f"Recorder: not running. Start it before the next crash: {command('watch')}")
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
                extra += f": {d['detail']}"
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
            died = f"; {cause_counts(n['causes'])}" if n["causes"] else ""
            p.line(f"  {name.ljust(width)}  {spark}  peak {fmt.size(n['peak_bytes'])}{died}")
    p.line()
    p.line(f"Database: {report['db']}")
