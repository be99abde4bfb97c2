"""Reading the Linux kernel's log: ``/dev/kmsg`` record by record, else ``dmesg``.

Both need privileges on most systems (root, or ``kernel.dmesg_restrict=0``): a
refusal becomes a reason string, never an exception. ``read_kmsg_tail`` reads what
the log holds now, keeping the newest records; ``Follower`` keeps the device open
and returns what came since the last call.
"""

import os

from wizard.system import procfs

KMSG = "/dev/kmsg"
MAX_RECORDS = 200000  # newest records kept from /dev/kmsg at most
MAX_SECONDS = 3.0  # time spent reading /dev/kmsg at most (a full 8 MiB log takes ~0.3 s)
DMESG_TIMEOUT = 2.0


def parse_kmsg_record(record):
    """``(usec_since_boot, message)`` of one ``/dev/kmsg`` record, or None.

    A record is ``prio,seq,usec,flags[,...];message`` followed by optional
    continuation lines that start with a space (``SUBSYSTEM=...``).
    """
    head, sep, rest = record.partition(";")
    if not sep:
        return None
    fields = head.split(",")
    if len(fields) < 3:
        return None
    try:
        usec = int(fields[2])
    except ValueError:
        return None
    if usec < 0:
        return None
    return usec, rest.split("\n", 1)[0]


def parse_dmesg_line(line):
    """``(seconds_since_boot or None, message)`` of one ``dmesg`` line (no ``-T``)."""
    s = line.lstrip()
    if s.startswith("<"):  # dmesg -r style priority prefix
        end = s.find(">")
        if 0 < end < 6:
            s = s[end + 1 :]
    if s.startswith("["):
        end = s.find("]")
        if end > 0:
            try:
                secs = float(s[1:end].strip())
            except ValueError:
                return None, line
            if secs != secs or secs < 0 or secs > 1e12:  # NaN, negative, absurd
                return None, s[end + 1 :].lstrip()
            return secs, s[end + 1 :].lstrip()
    return None, line


def _why(err):
    return err.strerror or type(err).__name__


def read_kmsg(root, max_records=MAX_RECORDS, max_seconds=MAX_SECONDS):
    """``(entries, None)`` from ``/dev/kmsg``, or ``(None, reason)`` when it cannot be read.

    ``read_kmsg_tail`` without the note on a cut read.
    """
    entries, reason, _ = read_kmsg_tail(root, max_records, max_seconds)
    return entries, reason


def read_kmsg_tail(root, max_records=MAX_RECORDS, max_seconds=MAX_SECONDS):
    """``(entries, None, cut)`` from ``/dev/kmsg``, or ``(None, reason, None)``.

    ``entries`` are ``(seconds_since_boot, message)``, the newest ``max_records``
    records at most: the device only reads forwards, so every record is read and
    only a ring of the newest is kept (parsed at the end). ``cut`` is None when the
    read reached the end of the log, else one line saying what was left out (the
    time budget ran out before the end: the newest records were not reached). A
    regular file in place of the device (test fixtures) is read whole, one record
    per line.
    """
    import collections
    import stat
    import time

    path = root.path(KMSG)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return None, f"{KMSG}: {_why(e)}", None
    ring = collections.deque(maxlen=max_records)
    cut = None
    try:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as e:
            return None, f"{KMSG}: {_why(e)}", None
        if regular:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(4 << 20).decode("utf-8", "replace")
            for line in data.split("\n"):
                if line.startswith(" ") and ring:
                    continue  # continuation line of the record before
                ring.append(line)
            return _parsed(ring), None, None
        deadline = time.monotonic() + max_seconds
        n = 0
        while True:
            try:
                raw = os.read(fd, 8192)
            except BlockingIOError:
                break  # EAGAIN: the end of the log
            except BrokenPipeError:
                continue  # EPIPE: records were overwritten while reading; go on
            except OSError as e:
                if n:
                    cut = f"stopped by an error after {n} records: {_why(e)}"
                    break
                return None, f"{KMSG}: {_why(e)}", None
            if not raw:
                break
            n += 1
            ring.append(raw)
            if not n % 512 and time.monotonic() > deadline:
                cut = (
                    f"read {n} records in {max_seconds:g} s without reaching the end: "
                    "the newest records were not read"
                )
                break
    finally:
        os.close(fd)
    return _parsed(ring), None, cut


def _parsed(records):
    entries = []
    for rec in records:
        if isinstance(rec, bytes):
            rec = rec.decode("utf-8", "replace")
        parsed = parse_kmsg_record(rec)
        if parsed:
            entries.append((parsed[0] / 1e6, parsed[1]))
    return entries


def dmesg_allowed(root):
    """Whether running ``dmesg`` can work: root, or kernel.dmesg_restrict=0."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True
    try:
        return root.read_text("/proc/sys/kernel/dmesg_restrict").strip() == "0"
    except OSError:
        return False


def read_dmesg(timeout=DMESG_TIMEOUT):
    """``(entries, None)`` from running ``dmesg``, or ``(None, reason)``."""
    import subprocess

    env = dict(os.environ, LC_ALL="C")
    try:
        done = subprocess.run(
            ["dmesg"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError:
        return None, "dmesg is not installed"
    except subprocess.TimeoutExpired:
        return None, f"dmesg took longer than {timeout:g} s"
    except OSError as e:
        return None, f"dmesg: {_why(e)}"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().split("\n")[0][:200]
        return None, f"dmesg failed: {err or 'exit status ' + str(done.returncode)}"
    text = done.stdout[-(4 << 20) :].decode("utf-8", "replace")
    entries = []
    for line in text.split("\n"):
        if not line:
            continue
        if line[0] in " \t" and entries and not line.lstrip().startswith("["):
            continue  # the rest of a multi-line message: its first line has its time
        entries.append(parse_dmesg_line(line))
    return entries, None


class Follower:
    """New kernel-log records since the last call, read from ``/dev/kmsg`` as they come.

    The device stays open (non-blocking) and is read from the end, so each call
    costs one read when nothing happened. Where it cannot be read (not root and
    ``kernel.dmesg_restrict=1``, or no Linux), ``ok`` is False and ``reason`` says why.
    """

    def __init__(self, root):
        self.root = root
        self.fd = None
        self.reason = None
        self.btime = None
        try:
            self.btime = procfs.boot_time(root)
            fd = os.open(root.path(KMSG), os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            self.reason = f"/dev/kmsg: {e.strerror or type(e).__name__}"
            return
        try:
            os.lseek(fd, 0, os.SEEK_END)
        except OSError:
            pass  # a regular file (fixtures): read it whole
        self.fd = fd

    @property
    def ok(self):
        return self.fd is not None

    def read(self, max_records=5000):
        """``[(epoch seconds or None, message)]`` logged since the last call."""
        out = []
        if self.fd is None:
            return out
        for _ in range(max_records):
            try:
                raw = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue  # records overwritten while we were away: go on with the next
            except OSError as e:
                self.reason = f"/dev/kmsg: {e.strerror or type(e).__name__}"
                self.close()
                break
            if not raw:
                break
            for rec in raw.decode("utf-8", "replace").split("\n"):
                parsed = parse_kmsg_record(rec) if rec and rec[0] != " " else None
                if parsed:
                    secs = parsed[0] / 1e6
                    out.append((self.btime + secs if self.btime else None, parsed[1]))
        return out

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
