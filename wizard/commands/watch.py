"""``python -m wizard watch``: record kernels, their memory and how each one died.

Samples every ``--interval`` seconds (``wizard.engines.recorder``) into a small SQLite
database (``--db``, ``$WIZARD_DB``, else the user's data directory); ``python -m
wizard history`` reads it. One recorder per database: an exclusive ``flock`` on
``<db>.lock`` (it dies with the process, so a killed recorder never blocks the
next one); a second one says which one is running and exits 1.
"""

import os
import time

from wizard.base import exitcodes, fmt
from wizard.base.invocation import command
from wizard.commands.base import UsageError, new_parser, parse, prog_of, say
from wizard.diagnosis import deathtext, endings
from wizard.system import recorder_lock

NAME = "watch"
EXIT_CODES = {
    exitcodes.OK: "stopped as asked (Ctrl-C, SIGTERM, --once or --duration)",
    exitcodes.PROBLEM: "another recorder holds the database, or it cannot be written",
    exitcodes.USAGE: "usage error (a bad interval, duration or size)",
    exitcodes.INTERRUPTED: "interrupted (Ctrl-C) before the first sample",
}
DEFAULT_INTERVAL = 2.0
MIN_INTERVAL = 0.05
MAX_FAILURES = 30  # samples in a row that could not be written before giving up


def busy_message(status, db):
    if status.get("pid"):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["since"]))
        who = f"pid {status['pid']}, since {since}"
        if status.get("where"):
            who += f", {status['where']}"
    else:
        who = "its pid is not known yet"
    return f"a recorder is already running ({who}); it writes to {db}"


def build_parser():
    p = new_parser(
        NAME,
        "Record the kernels, their memory and their cgroup's limit and OOM kills every few "
        f"seconds, and how each kernel died: {', '.join(endings.CAUSES)}. Leave it running; "
        f"`{command('history')}` shows what it saw. Inside a Jupyter server, the extension "
        "wizard.server_ext records exact exit statuses too.",
        EXIT_CODES,
    )
    p.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between samples (default: {DEFAULT_INTERVAL:g})",
    )
    p.add_argument(
        "--db", metavar="PATH", help="the database (default: $WIZARD_DB or the data dir)"
    )
    p.add_argument(
        "--retention",
        default="7d",
        metavar="DURATION",
        help="how long samples and deaths are kept (default: 7d)",
    )
    p.add_argument(
        "--max-size",
        default="64M",
        metavar="SIZE",
        help="the database's size cap; the oldest samples go first (default: 64M)",
    )
    p.add_argument(
        "--duration",
        metavar="DURATION",
        help="stop after this long (default: run until stopped)",
    )
    p.add_argument("--once", action="store_true", help="take one sample and stop")
    p.add_argument(
        "--textfile",
        metavar="DIR",
        help="after each sample, write the kernel metrics to DIR/kernel_wizard.prom "
        "for node_exporter's textfile collector",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return p


class _Stop(Exception):
    pass


def main(argv, ctx):
    from wizard.system import historydb

    args, code = parse(build_parser(), argv)
    if args is None:
        return code
    try:
        retention = fmt.parse_duration(args.retention)
        max_bytes = fmt.parse_size(args.max_size)
        duration = fmt.parse_duration(args.duration) if args.duration else None
    except ValueError as exc:
        raise UsageError(f"not a duration or size: {exc} (see --help)") from None
    if not args.interval >= MIN_INTERVAL:
        raise UsageError(f"--interval must be at least {MIN_INTERVAL:g} s (see --help)")
    if args.textfile:
        from wizard.server import metrics

        args.textfile = os.path.abspath(os.path.expanduser(args.textfile))
        bad = metrics.check_textfile_dir(args.textfile)
        if bad:
            raise UsageError(bad)

    db = (
        os.path.abspath(os.path.expanduser(args.db))
        if args.db
        else historydb.default_db_path(ctx.environ)
    )
    lock = recorder_lock.Lock(db)
    try:
        lock.acquire()
    except recorder_lock.Busy as busy:
        say(ctx, NAME, busy_message(busy.args[0], db))
        return exitcodes.PROBLEM
    except OSError as exc:
        say(ctx, NAME, f"cannot create {lock.path}: {exc.strerror or exc}")
        return exitcodes.PROBLEM
    try:
        return record(ctx, args, db, retention, max_bytes, duration)
    finally:
        lock.release()


def record(ctx, args, db, retention, max_bytes, duration):
    import signal
    import sqlite3

    from wizard.engines import recorder
    from wizard.engines import store as store_mod

    tell = (lambda text: None) if args.quiet else (lambda text: _say(ctx, text))
    try:
        store = store_mod.Store(db, retention=retention, max_bytes=max_bytes, name="watch")
    except (sqlite3.Error, OSError) as exc:
        say(ctx, NAME, f"cannot open {db}: {exc}")
        return exitcodes.PROBLEM
    rec = recorder.Recorder(store, name="watch")
    textfile = None
    if args.textfile:
        from wizard.server import metrics

        textfile = metrics.Textfile(args.textfile)
    state = {"sleeping": False, "stop": False}

    def on_signal(signum, frame):
        state["stop"] = True
        if state["sleeping"]:
            raise _Stop

    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, on_signal)
        except (ValueError, OSError):  # not the main thread
            pass
    if not args.once:
        tell(
            f"Recording kernels every {args.interval:g} s into {db}. Stop with Ctrl-C; "
            f"see what it saw with: {command('history')}"
        )
        if not rec.klog.ok:
            tell(f"  (no kernel log: {rec.klog.reason}; OOM kills are told by cgroup counters)")
    end = time.monotonic() + duration if duration is not None else None
    errors_said = set()
    code = exitcodes.OK
    failures = 0
    try:
        while not state["stop"]:
            t0 = time.monotonic()
            try:
                found = rec.sample()
                for d in found:
                    tell(deathtext.describe(d) + f" [{d['cause']}]")
                failures = 0
                bad = textfile.write(rec, found) if textfile else None
                if bad and bad not in errors_said:
                    errors_said.add(bad)
                    say(ctx, NAME, bad)
            except sqlite3.Error as exc:
                # e.g. locked by a long reader, or the disk is full: say so once, go on
                failures += 1
                text = f"{prog_of(NAME)}: cannot write {db}: {exc}"
                if text not in errors_said:
                    errors_said.add(text)
                    _say(ctx, text, stream=ctx.stderr)
                if failures >= MAX_FAILURES or args.once:
                    _say(
                        ctx,
                        f"{prog_of(NAME)}: giving up after {failures} failed sample(s)",
                        stream=ctx.stderr,
                    )
                    code = exitcodes.PROBLEM
                    break
            for e in rec.errors:
                if e not in errors_said:
                    errors_said.add(e)
                    say(ctx, NAME, str(e))
            if args.once or (end is not None and time.monotonic() >= end):
                break
            pause = args.interval - (time.monotonic() - t0)
            if end is not None:
                pause = min(pause, end - time.monotonic())
            if pause > 0 and not state["stop"]:
                state["sleeping"] = True
                try:
                    time.sleep(pause)
                except _Stop:
                    break
                finally:
                    state["sleeping"] = False
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        rec.klog.close()
        store.close()
    if not args.once:
        tell(f"Stopped after {rec.samples_taken} sample(s).")
    return code


def _say(ctx, text, stream=None):
    out = stream or ctx.stdout
    try:
        out.write(text + "\n")
        out.flush()
    except (OSError, ValueError):
        pass
