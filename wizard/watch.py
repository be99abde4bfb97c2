"""``python -m wizard watch``: record kernels, their memory and how each one died.

Samples every ``--interval`` seconds (``wizard.recorder``) into a small SQLite
database (``--db``, ``$WIZARD_DB``, else the user's data directory); ``python -m
wizard history`` reads it. One recorder per database: an exclusive ``flock`` on
``<db>.lock`` (it dies with the process, so a killed recorder never blocks the
next one); a second one says which one is running and exits 1.
"""

import os
import time

from wizard import exitcodes, fmt

DEFAULT_INTERVAL = 2.0
MIN_INTERVAL = 0.05
MAX_FAILURES = 30  # samples in a row that could not be written before giving up


class Busy(Exception):
    """Another recorder holds the lock: ``args[0]`` is its recorder_status()."""


class Lock:
    """An exclusive, non-blocking flock on ``<db>.lock`` naming its holder."""

    def __init__(self, db_path, where="python -m wizard watch"):
        self.path = db_path + ".lock"
        self.where = where
        self.fd = None

    def acquire(self):
        """Take the lock or raise Busy. The file then says who holds it, and since when.
        OSError when it cannot be taken (no flock on this system: Windows)."""
        try:
            import fcntl
        except ImportError:
            raise OSError("this system has no flock (Windows?)") from None

        from wizard import history

        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(history.recorder_status(self.path[: -len(".lock")])) from None
        except OSError:
            os.close(fd)
            raise
        start = _start_ticks(os.getpid())
        text = f"pid={os.getpid()}\nsince={time.time():.3f}\nwhere={self.where}\n"
        if start is not None:
            text += f"start={start}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _start_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read(4096)
        return stat[stat.rfind(")") + 2 :].split()[19]
    except (OSError, IndexError):
        return None


def busy_message(status, db):
    if status.get("pid"):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["since"]))
        who = f"pid {status['pid']}, since {since}"
        if status.get("where"):
            who += f", {status['where']}"
    else:
        who = "its pid is not known yet"
    return f"wizard watch: a recorder is already running ({who}); it writes to {db}"


def build_parser():
    from wizard.cli import new_parser

    p = new_parser(
        prog="python -m wizard watch",
        description="Record the kernels, their memory and their cgroup's limit and OOM kills "
        "every few seconds, and how each kernel died: oom-kill, shutdown, signal, exit or "
        "unknown. Leave it running; `python -m wizard history` shows what it saw. Inside a "
        "Jupyter server, the extension wizard.server_ext records exact exit statuses too.",
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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exitcodes.USAGE if exc.code else exitcodes.OK
    prog = "python -m wizard watch"
    try:
        retention = fmt.parse_duration(args.retention)
        max_bytes = fmt.parse_size(args.max_size)
        duration = fmt.parse_duration(args.duration) if args.duration else None
    except ValueError as exc:
        ctx.stderr.write(f"{prog}: not a duration or size: {exc} (see --help)\n")
        return exitcodes.USAGE
    if not args.interval >= MIN_INTERVAL:
        ctx.stderr.write(f"{prog}: --interval must be at least {MIN_INTERVAL:g} s (see --help)\n")
        return exitcodes.USAGE
    if args.textfile:
        from wizard import metrics

        args.textfile = os.path.abspath(os.path.expanduser(args.textfile))
        bad = metrics.check_textfile_dir(args.textfile)
        if bad:
            ctx.stderr.write(f"{prog}: {bad}\n")
            return exitcodes.USAGE

    from wizard import history

    db = (
        os.path.abspath(os.path.expanduser(args.db))
        if args.db
        else history.default_db_path(ctx.environ)
    )
    lock = Lock(db)
    try:
        lock.acquire()
    except Busy as busy:
        ctx.stderr.write(busy_message(busy.args[0], db) + "\n")
        return exitcodes.PROBLEM
    except OSError as exc:
        ctx.stderr.write(f"wizard watch: cannot create {lock.path}: {exc.strerror or exc}\n")
        return exitcodes.PROBLEM
    try:
        return record(ctx, args, db, retention, max_bytes, duration)
    finally:
        lock.release()


def record(ctx, args, db, retention, max_bytes, duration):
    import signal
    import sqlite3

    from wizard import history, recorder

    say = (lambda text: None) if args.quiet else (lambda text: _say(ctx, text))
    try:
        store = recorder.Store(db, retention=retention, max_bytes=max_bytes, name="watch")
    except (sqlite3.Error, OSError) as exc:
        ctx.stderr.write(f"wizard watch: cannot open {db}: {exc}\n")
        return exitcodes.PROBLEM
    rec = recorder.Recorder(store, name="watch")
    textfile = None
    if args.textfile:
        from wizard import metrics

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
        say(
            f"Recording kernels every {args.interval:g} s into {db}. Stop with Ctrl-C; "
            "see what it saw with: python -m wizard history"
        )
        if not rec.klog.ok:
            say(f"  (no kernel log: {rec.klog.reason}; OOM kills are told by cgroup counters)")
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
                    say(history.describe(d) + f" [{d['cause']}]")
                failures = 0
                bad = textfile.write(rec, found) if textfile else None
                if bad and bad not in errors_said:
                    errors_said.add(bad)
                    _say(ctx, f"wizard watch: {bad}", stream=ctx.stderr)
            except sqlite3.Error as exc:
                # e.g. locked by a long reader, or the disk is full: say so once, go on
                failures += 1
                text = f"wizard watch: cannot write {db}: {exc}"
                if text not in errors_said:
                    errors_said.add(text)
                    _say(ctx, text, stream=ctx.stderr)
                if failures >= MAX_FAILURES or args.once:
                    _say(
                        ctx,
                        f"wizard watch: giving up after {failures} failed sample(s)",
                        stream=ctx.stderr,
                    )
                    code = exitcodes.PROBLEM
                    break
            for e in rec.errors:
                if e not in errors_said:
                    errors_said.add(e)
                    _say(ctx, f"wizard watch: {e}", stream=ctx.stderr)
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
        say(f"Stopped after {rec.samples_taken} sample(s).")
    return code


def _say(ctx, text, stream=None):
    out = stream or ctx.stdout
    try:
        out.write(text + "\n")
        out.flush()
    except (OSError, ValueError):
        pass
