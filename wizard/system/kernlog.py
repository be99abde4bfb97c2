"""Recent OOM kills from the kernel log.

The log is read from ``/dev/kmsg`` (non-blocking, record by record, until the
kernel says there is nothing more); when that cannot be opened and this process
may read the log anyway (root, or ``kernel.dmesg_restrict=0``), ``dmesg`` is run
under a short timeout. Both need privileges on most systems: a refusal becomes
one status line (``"unreadable: ..."``), never an exception.

Lines understood (kernels 2.6 to 6.x)::

    Memory cgroup out of memory: Killed process 2230 (python3) total-vm:323784kB, ...
    Out of memory: Killed process 2230 (python3) total-vm:323784kB, anon-rss:101888kB, ...
    Killed process 2230 (python3) total-vm:323784kB, anon-rss:101888kB, ...   (before 5.0)
    Killed process 2230, UID 0, (python3) total-vm:323784kB, ...              (2.6.32)

On the older forms a line before the kill tells whether a cgroup limit was hit
("Memory cgroup out of memory: Kill process ...", "Task in /a killed as a result
of limit of /b", "oom-kill:constraint=CONSTRAINT_MEMCG,...").

/dev/kmsg is read from its oldest record on, within MAX_RECORDS and MAX_SECONDS.

Each kill becomes ``{"time", "pid", "name", "rss_bytes", "total_vm_bytes",
"cgroup_oom"}``; ``time`` is wall-clock epoch seconds (boot time from
``/proc/stat`` ``btime`` plus the record's time since boot), or None when either
is unknown.
"""

import os

KMSG = "/dev/kmsg"
KEEP = 20  # kills kept (the most recent)
MAX_RECORDS = 200000  # records read from /dev/kmsg at most
MAX_SECONDS = 0.25  # time spent reading /dev/kmsg at most
DMESG_TIMEOUT = 2.0

_KILLED = "Killed process "
# Context lines that come before the "Killed process" line on older kernels.
_MEMCG_HINTS = (
    "Memory cgroup out of memory",
    "constraint=CONSTRAINT_MEMCG",
    "Memory cgroup stats for",
)
_HOST_HINTS = ("Out of memory", "constraint=CONSTRAINT_NONE", "constraint=CONSTRAINT_CPUSET")


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


def _kb(msg, key):
    """Bytes of ``key:NNNkB`` in ``msg``, or None."""
    i = msg.find(key)
    if i < 0:
        return None
    i += len(key)
    j = i
    n = len(msg)
    while j < n and msg[j].isdigit() and msg[j].isascii():
        j += 1
    if j == i or j - i > 15 or not msg.startswith("kB", j):
        return None
    return int(msg[i:j]) * 1024


def parse_kill(msg):
    """A kill ``{"pid", "name", "rss_bytes", "total_vm_bytes", "cgroup_oom"}`` or None.

    ``cgroup_oom`` is True or False when the line itself says (5.0+: "Memory
    cgroup out of memory: Killed process" / "Out of memory: Killed process"),
    else None (older kernels: the caller looks at the lines before it).
    """
    i = msg.find(_KILLED)
    if i < 0:
        return None
    prefix = msg[:i]
    rest = msg[i + len(_KILLED) :]
    j = 0
    while j < len(rest) and rest[j].isdigit() and rest[j].isascii():
        j += 1
    if j == 0 or j > 10:
        return None
    pid = int(rest[:j])
    if pid <= 0:
        return None
    rest = rest[j:]
    open_ = rest.find("(")
    if open_ < 0:
        return None
    vm_at = rest.find("total-vm:")
    close = rest.rfind(")", open_, vm_at if vm_at > open_ else len(rest))
    if close < 0:
        return None
    name = rest[open_ + 1 : close]
    if "Memory cgroup out of memory" in prefix:
        cgroup_oom = True
    elif "Out of memory" in prefix:
        cgroup_oom = False
    else:
        cgroup_oom = None
    parts = [_kb(rest, k) for k in ("anon-rss:", "file-rss:", "shmem-rss:")]
    known = [p for p in parts if p is not None]
    return {
        "pid": pid,
        "name": name,
        "rss_bytes": sum(known) if known else None,
        "total_vm_bytes": _kb(rest, "total-vm:"),
        "cgroup_oom": cgroup_oom,
    }


def kills(entries, btime=None, keep=KEEP):
    """The last ``keep`` OOM kills in ``entries``, oldest first.

    ``entries`` is an iterable of ``(seconds_since_boot or None, message)``;
    ``btime`` is the boot time (epoch seconds) or None.
    """
    found = []
    context = None  # True: a cgroup OOM is being reported; False: a host-wide one
    memcg = None  # the victim's cgroup, from the "oom-kill:...task_memcg=" line before it
    for secs, msg in entries:
        if msg.startswith("oom-kill:") and "task_memcg=" in msg:
            memcg = msg.split("task_memcg=", 1)[1].split(",", 1)[0] or None
        if _KILLED not in msg:
            if "emory" not in msg and "constraint=" not in msg and "limit of" not in msg:
                continue  # most lines: nothing to do with memory
            if any(h in msg for h in _MEMCG_HINTS) or (
                msg.startswith("Task in ") and "killed as a result of limit of" in msg
            ):
                context = True
            elif any(h in msg for h in _HOST_HINTS):
                context = False
            continue
        kill = parse_kill(msg)
        if kill is None:
            continue
        if kill["cgroup_oom"] is None:
            kill["cgroup_oom"] = bool(context)
        kill["memcg"] = memcg
        context = memcg = None
        when = None if secs is None or btime is None else btime + secs
        found.append({"time": when, **kill})
        if len(found) > 4 * keep:
            del found[: len(found) - keep]
    return found[-keep:] if keep else []


def boot_time(root):
    """Boot time in epoch seconds from ``/proc/stat`` ``btime``, or None."""
    try:
        text = root.read_text("/proc/stat")
    except OSError:
        return None
    for line in text.split("\n"):
        if line.startswith("btime "):
            try:
                value = int(line.split()[1])
            except (ValueError, IndexError):
                return None
            return value if value > 0 else None
    return None


def _why(err):
    return err.strerror or type(err).__name__


def read_kmsg(root, max_records=MAX_RECORDS, max_seconds=MAX_SECONDS):
    """``(entries, None)`` from ``/dev/kmsg``, or ``(None, reason)`` when it cannot be read.

    ``entries`` are ``(seconds_since_boot, message)``. A regular file in place of
    the device (test fixtures) is read whole, one record per line.
    """
    import stat
    import time

    path = root.path(KMSG)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return None, f"{KMSG}: {_why(e)}"
    entries = []
    try:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as e:
            return None, f"{KMSG}: {_why(e)}"
        if regular:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(4 << 20).decode("utf-8", "replace")
            records = []
            for line in data.split("\n"):
                if line.startswith(" ") and records:
                    continue  # continuation line of the record before
                records.append(line)
            for rec in records[-max_records:]:
                parsed = parse_kmsg_record(rec)
                if parsed:
                    entries.append((parsed[0] / 1e6, parsed[1]))
            return entries, None
        deadline = time.monotonic() + max_seconds
        n = 0
        while n < max_records:
            try:
                raw = os.read(fd, 8192)
            except BlockingIOError:
                break  # EAGAIN: no more records
            except BrokenPipeError:
                continue  # EPIPE: records were overwritten while reading; go on
            except OSError as e:
                if n:
                    break
                return None, f"{KMSG}: {_why(e)}"
            if not raw:
                break
            n += 1
            parsed = parse_kmsg_record(raw.decode("utf-8", "replace"))
            if parsed:
                entries.append((parsed[0] / 1e6, parsed[1]))
            if not n % 256 and time.monotonic() > deadline:
                break
    finally:
        os.close(fd)
    return entries, None


def _dmesg_allowed(root):
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
    return [parse_dmesg_line(line) for line in text.split("\n") if line], None


def oom_log(root, keep=KEEP):
    """``(kills, status)``: the last ``keep`` OOM kills and ``"ok"``, ``"empty"``
    (the log was read and holds no OOM kill) or ``"unreadable: <reason>"``.
    """
    entries, reason = read_kmsg(root)
    # dmesg reads the real system's log: never for a fixture tree.
    if entries is None and root.real:
        if _dmesg_allowed(root):
            entries, why = read_dmesg()
            if entries is None:
                reason = f"{reason}; {why}"
        else:
            reason += " (reading the kernel log needs root or kernel.dmesg_restrict=0)"
    if entries is None:
        return [], "unreadable: " + " ".join(reason.split())
    found = kills(entries, boot_time(root), keep)
    return found, ("ok" if found else "empty")
