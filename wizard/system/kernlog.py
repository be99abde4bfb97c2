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

/dev/kmsg reads only forwards: every record is read and the newest MAX_RECORDS
kept; when MAX_SECONDS run out first the status says the read was cut.

Each kill becomes ``{"time", "pid", "name", "rss_bytes", "total_vm_bytes",
"cgroup_oom", "memcg", "limit_memcg", "group_kill"}``; ``memcg`` is the victim's cgroup and
``limit_memcg`` the one whose limit was hit (``oom_memcg=`` on 4.19+, ``limit of`` before),
both as the kernel names them, or None; ``time`` is wall-clock epoch seconds (boot time from
``/proc/stat`` ``btime`` plus the record's time since boot), or None when either
is unknown.
"""

from wizard.system import kmsg, procfs

KEEP = 20  # kills kept (the most recent)

_KILLED = "Killed process "
# Context lines that come before the "Killed process" line on older kernels.
_MEMCG_HINTS = (
    "Memory cgroup out of memory",
    "constraint=CONSTRAINT_MEMCG",
    "Memory cgroup stats for",
)
_HOST_HINTS = ("Out of memory", "constraint=CONSTRAINT_NONE", "constraint=CONSTRAINT_CPUSET")


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
    vm_at = rest.rfind("total-vm:")  # the last: a process name may hold the word
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
    sizes = rest[close + 1 :]  # after the name, which may look like a size itself
    parts = [_kb(sizes, k) for k in ("anon-rss:", "file-rss:", "shmem-rss:")]
    known = [p for p in parts if p is not None]
    return {
        "pid": pid,
        "name": name,
        "rss_bytes": sum(known) if known else None,
        "total_vm_bytes": _kb(sizes, "total-vm:"),
        "cgroup_oom": cgroup_oom,
    }


def _field(msg, key):
    """The value of ``key`` in an ``oom-kill:a=b,c=d`` line, or None."""
    i = msg.find("," + key)
    if i < 0:
        return None
    return msg[i + 1 + len(key) :].split(",", 1)[0] or None


_LIMIT_OF = " killed as a result of limit of "
_CONT = "as a result of limit of "


def _split_head(msg):
    return msg.startswith("Task in ") and msg.endswith(" killed") and len(msg) > 15


def _task_in(msg, pending):
    """``(victim's cgroup, limit's cgroup)`` of the pre-4.19 memcg line, or None.

    ``Task in /X killed as a result of limit of /Y``; on 3.10 the tail may come as a
    record of its own (``pending`` holds /X from the record before)."""
    if msg.startswith("Task in ") and _LIMIT_OF in msg:
        victim, limit = msg[len("Task in ") :].rsplit(_LIMIT_OF, 1)
    elif pending is not None and msg.lstrip().startswith(_CONT):
        victim, limit = pending, msg.lstrip()[len(_CONT) :]
    else:
        return None
    victim, limit = victim.strip(), limit.strip()
    return (victim or None, limit or None) if limit else None


_GROUP_HEAD = "Tasks in "
_GROUP_TAIL = " are going to be killed due to memory.oom.group set"


def kills(entries, btime=None, keep=KEEP):
    """The last ``keep`` OOM kills in ``entries``, oldest first, one per process.

    ``entries`` is an iterable of ``(seconds_since_boot or None, message)``;
    ``btime`` is the boot time (epoch seconds) or None. ``memcg`` is the victim's
    cgroup as the kernel names it (the host's view), from the ``oom-kill:`` line
    before the kill or, for the members of a group kill (``memory.oom.group``), from
    the ``Tasks in X are going to be killed`` line; ``group_kill`` is True for those.
    A group kill names its first victim twice: it is kept once.
    """
    found = []
    context = None  # True: a cgroup OOM is being reported; False: a host-wide one
    memcg = None  # the victim's cgroup, from the "oom-kill:...task_memcg=" line before it
    limit = None  # the cgroup whose limit was hit ("oom_memcg=", "limit of")
    pending = None  # 3.10 may split "Task in /X killed" from " as a result of limit of /Y"
    group = None  # the cgroup of a group kill in progress
    episode = {}  # pid -> kill, within one OOM (from its oom-kill: line on)
    for secs, msg in entries:
        if msg.startswith("oom-kill:"):
            group, episode = None, {}
            memcg, limit = _field(msg, "task_memcg="), _field(msg, "oom_memcg=")
        task_in = _task_in(msg, pending)
        pending = msg[len("Task in ") : -len(" killed")] if _split_head(msg) else None
        if task_in is not None:
            memcg, limit = task_in
            context = limit != "host"  # some vendor kernels: a host-wide OOM
            continue
        if msg.startswith(_GROUP_HEAD) and msg.endswith(_GROUP_TAIL):
            group = msg[len(_GROUP_HEAD) : -len(_GROUP_TAIL)] or None
            for k in episode.values():
                k["group_kill"] = True
            continue
        if _KILLED not in msg:
            if "invoked oom-killer" in msg:
                group, episode = None, {}
            if "emory" not in msg and "constraint=" not in msg and "limit of" not in msg:
                continue  # most lines: nothing to do with memory
            if any(h in msg for h in _MEMCG_HINTS):
                context = True
            elif any(h in msg for h in _HOST_HINTS):
                context = False
            continue
        kill = parse_kill(msg)
        if kill is None:
            continue
        if group is not None and kill["pid"] in episode:
            continue  # the group kill's first victim, named again
        if kill["cgroup_oom"] is None:
            kill["cgroup_oom"] = bool(context)
        kill["memcg"] = memcg or group
        kill["limit_memcg"] = limit if kill["cgroup_oom"] else None
        kill["group_kill"] = group is not None
        context = memcg = limit = None
        when = None if secs is None or btime is None else btime + secs
        entry = {"time": when, **kill}
        episode[kill["pid"]] = entry
        found.append(entry)
        if len(found) > 4 * keep:
            del found[: len(found) - keep]
    return found[-keep:] if keep else []


# "python3[1234]: segfault at 0 ip ..."; "traps: python3[1234] general protection fault ...";
# "traps: python3[1234] general protection ip:..." (3.10 to 4.x);
# "traps: python3[1234] trap invalid opcode ..."; "python3[1234]: bus error ..."
_FAULTS = (
    ("]: segfault at ", "SIGSEGV"),
    ("] general protection fault", "SIGSEGV"),
    ("] general protection ip:", "SIGSEGV"),  # before 5.x: no word "fault"
    ("] trap invalid opcode", "SIGILL"),
    ("] trap divide error", "SIGFPE"),
    ("] trap int3", "SIGTRAP"),
    ("]: bus error", "SIGBUS"),
)


def parse_fault(msg):
    """``(pid, signal name)`` of a kernel-log fault line, or None."""
    for marker, sig in _FAULTS:
        i = msg.rfind(marker)  # the last: a process name may hold the marker
        if i < 0:
            continue
        j = msg.rfind("[", 0, i)
        digits = msg[j + 1 : i] if j >= 0 else ""
        if digits.isascii() and digits.isdigit() and 0 < len(digits) <= 10:
            return int(digits), sig
    return None


def oom_log(root, keep=KEEP):
    """``(kills, status)``: the last ``keep`` OOM kills and ``"ok"``, ``"empty"``
    (the log was read and holds no OOM kill), ``"cut: <what was left out>"`` (read,
    but not to its end: the newest records may be missing) or ``"unreadable: <reason>"``.
    """
    entries, reason, cut = kmsg.read_kmsg_tail(root)
    # dmesg reads the real system's log: never for a fixture tree.
    if entries is None and root.real:
        if kmsg.dmesg_allowed(root):
            entries, why = kmsg.read_dmesg()
            if entries is None:
                reason = f"{reason}; {why}"
        else:
            reason += " (reading the kernel log needs root or kernel.dmesg_restrict=0)"
    if entries is None:
        return [], "unreadable: " + " ".join(reason.split())
    found = kills(entries, procfs.boot_time(root), keep)
    if cut:
        return found, "cut: " + cut
    return found, ("ok" if found else "empty")
