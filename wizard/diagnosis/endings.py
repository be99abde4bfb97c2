"""How a kernel died: the evidence the recorder gathers, and the cause it adds up to.

A death is a dict of evidence (any of it may be missing)::

    returncode     int | None   Popen style: -11 is SIGSEGV, 3 is exit(3)
    status_source  "server" (the Jupyter server reaped its own child: exact),
                   "zombie" (/proc showed the exit status before the parent reaped it),
                   or None
    requested      "shutdown" | "restart" (the server was asked to stop it),
                   "unlisted" (its server no longer lists the kernel),
                   "server-gone" (its server stopped), or None
    oom            "kernel-log" (the kernel log names its pid),
                   "counter" (its cgroup's OOM-kill count rose meanwhile), or None
    oom_checked    True when an OOM kill would have been seen (a cgroup counter or the
                   kernel log could be read)
    log_signal     a signal the kernel log names for its pid (a segfault line), or None

``classify(evidence)`` turns it into ``(cause, signal, detail)``, where cause is one
of ``CAUSES``. The order matters: the kernel log naming the pid is proof of an
OOM kill; a stop on request explains any status that follows; an exact status
other than SIGKILL rules an OOM kill out (the OOM killer only sends SIGKILL).
"""

OOM_KILL, SHUTDOWN, SIGNAL, EXIT, UNKNOWN = "oom-kill", "shutdown", "signal", "exit", "unknown"
CAUSES = (OOM_KILL, SHUTDOWN, SIGNAL, EXIT, UNKNOWN)

# Signal names by number (Linux numbering; the table in wizard.diagnosis.signals covers the common
# ones with their meaning, these only name the rest).
_NAMES = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    5: "SIGTRAP",
    6: "SIGABRT",
    7: "SIGBUS",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGUSR1",
    11: "SIGSEGV",
    12: "SIGUSR2",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
    24: "SIGXCPU",
    25: "SIGXFSZ",
    31: "SIGSYS",
}


def signal_name(number):
    """``SIGSEGV`` for 11; ``signal 42`` for a number without a name; None for None."""
    if number is None:
        return None
    try:
        import signal

        return signal.Signals(number).name
    except (ValueError, AttributeError):
        return _NAMES.get(number, f"signal {number}")


def returncode_from_wait_status(status):
    """A raw ``waitpid`` status (as /proc/PID/stat field 52 holds it) -> Popen returncode."""
    if status is None or status < 0:
        return None
    sig = status & 0x7F
    if sig:
        return -sig
    return (status >> 8) & 0xFF


def describe_returncode(rc):
    """``(signal name or None, exit code or None)`` of a Popen returncode."""
    if rc is None:
        return None, None
    if rc < 0:
        return signal_name(-rc), None
    if rc > 128 and rc - 128 in _NAMES:  # a shell in between reports 128 + signal
        return signal_name(rc - 128), None
    return None, rc


_REQUESTED = {
    "shutdown": "shut down on request",
    "restart": "restarted on request",
    "unlisted": "its server no longer lists it: shut down on request",
    "server-gone": "its Jupyter server stopped",
}


def classify(ev):
    """``(cause, signal, detail)`` from the evidence dict (see the module doc)."""
    rc = ev.get("returncode")
    sig, code = describe_returncode(rc)
    how = {"server": "exit status from the server", "zombie": "exit status read from /proc"}.get(
        ev.get("status_source") or "", ""
    )
    if ev.get("oom") == "kernel-log":
        return OOM_KILL, "SIGKILL", "the kernel log names it as killed for lack of memory"
    if ev.get("requested"):
        detail = _REQUESTED.get(ev["requested"], ev["requested"])
        if sig or code is not None:
            detail += f" ({sig or f'exit code {code}'})"
        return SHUTDOWN, sig, detail
    if sig and sig != "SIGKILL":
        return SIGNAL, sig, how or "signal"
    if code is not None and rc is not None and rc >= 0:
        return EXIT, None, f"exit code {code}" + (f" ({how})" if how else "")
    if ev.get("oom") == "counter":
        return OOM_KILL, "SIGKILL", "its cgroup's OOM-kill count rose when it died"
    if sig == "SIGKILL":
        if ev.get("oom_checked"):
            why = "no OOM kill was counted: killed by someone (kill -9, a forced restart)"
        else:
            why = "most often the OOM killer, whose record could not be read here"
        return SIGNAL, sig, f"{how or 'signal'}; {why}"
    if ev.get("log_signal"):
        return SIGNAL, ev["log_signal"], "the kernel log shows the fault"
    return UNKNOWN, None, "it vanished between two samples and left no evidence"


# ---------------------------------------------------------------------------
# The kernel log: faults that name a pid

# "python3[1234]: segfault at 0 ip ..."; "traps: python3[1234] general protection fault ...";
# "traps: python3[1234] trap invalid opcode ..."; "python3[1234]: bus error ..."
_FAULTS = (
    ("]: segfault at ", "SIGSEGV"),
    ("] general protection fault", "SIGSEGV"),
    ("] trap invalid opcode", "SIGILL"),
    ("] trap divide error", "SIGFPE"),
    ("] trap int3", "SIGTRAP"),
    ("]: bus error", "SIGBUS"),
)


def parse_fault(msg):
    """``(pid, signal name)`` of a kernel-log fault line, or None."""
    for marker, sig in _FAULTS:
        i = msg.find(marker)
        if i < 0:
            continue
        j = msg.rfind("[", 0, i)
        digits = msg[j + 1 : i] if j >= 0 else ""
        if digits.isascii() and digits.isdigit() and 0 < len(digits) <= 10:
            return int(digits), sig
    return None


class KernelLog:
    """New kernel-log records since the last call, read from ``/dev/kmsg`` as they come.

    The device stays open (non-blocking) and is read from the end, so each call
    costs one read when nothing happened. Where it cannot be read (not root and
    ``kernel.dmesg_restrict=1``, or no Linux), ``ok`` is False and ``reason`` says why.
    """

    def __init__(self, root):
        import os

        self.root = root
        self.fd = None
        self.reason = None
        self.btime = None
        try:
            from wizard.system import kernlog

            self.btime = kernlog.boot_time(root)
            fd = os.open(root.path(kernlog.KMSG), os.O_RDONLY | os.O_NONBLOCK)
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
        import os

        from wizard.system import kernlog

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
                parsed = kernlog.parse_kmsg_record(rec) if rec and rec[0] != " " else None
                if parsed:
                    secs = parsed[0] / 1e6
                    out.append((self.btime + secs if self.btime else None, parsed[1]))
        return out

    def close(self):
        import os

        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class Evidence:
    """What the kernel log said about which pid, kept for a while: kills and faults."""

    KEEP_SECONDS = 600

    def __init__(self):
        self.kills = {}  # pid -> {"time", "rss_bytes", "cgroup_oom"}
        self.faults = {}  # pid -> (time, signal name)

    def feed(self, entries):
        """Take ``[(epoch or None, message)]`` from ``KernelLog.read``."""
        if not entries:
            return
        from wizard.system import kernlog

        for when, msg in entries:
            if "Killed process " in msg:
                kill = kernlog.parse_kill(msg)
                if kill:
                    self.kills[kill["pid"]] = {
                        "time": when,
                        "rss_bytes": kill["rss_bytes"],
                        "cgroup_oom": kill["cgroup_oom"],
                    }
                continue
            fault = parse_fault(msg)
            if fault:
                self.faults[fault[0]] = (when, fault[1])

    def feed_kills(self, kills):
        """Take kills as ``kernlog.oom_log`` / ``memory.probe`` return them."""
        for k in kills or []:
            if k.get("pid"):
                self.kills.setdefault(
                    k["pid"],
                    {"time": k.get("time"), "rss_bytes": k.get("rss_bytes"), "cgroup_oom": None},
                )

    def about(self, pid, since=None):
        """``(kill or None, fault signal or None)`` logged for ``pid`` (after ``since``)."""
        kill = self.kills.get(pid)
        if kill and since is not None and kill["time"] is not None and kill["time"] < since - 5:
            kill = None  # an older process that had the same pid
        fault = self.faults.get(pid)
        if fault and since is not None and fault[0] is not None and fault[0] < since - 5:
            fault = None
        return kill, (fault[1] if fault else None)

    def prune(self, now):
        cutoff = now - self.KEEP_SECONDS
        self.kills = {
            p: v for p, v in self.kills.items() if v["time"] is None or v["time"] >= cutoff
        }
        self.faults = {p: v for p, v in self.faults.items() if v[0] is None or v[0] >= cutoff}
