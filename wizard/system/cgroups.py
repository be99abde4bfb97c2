"""Linux cgroups, v1 and v2: which cgroup a process is in, where it is mounted, what it holds.

The one reader of ``/proc/PID/cgroup``, ``/proc/self/mountinfo`` and the cgroup files,
used by the memory probe, the recorder and ``wizard run``. Every file is read through
a ``SysRoot``, so fixture trees work. A file that is missing where that is normal
(``memory.peak`` on older kernels, PSI turned off) gives None silently; one that is
unreadable or holds garbage gives None plus one line in ``errors``.

Where the files are
    ``/proc/PID/cgroup`` gives ``0::/path`` (v2) and ``N:memory:/path`` (v1); the
    mounts come from ``/proc/self/mountinfo`` (the usual places when it says
    nothing). A cgroup path is found in the first mount whose root contains it (a
    container without a cgroup namespace sees the host's path under its mount's
    root); a path that climbs out of every mount (``/../..``, a cgroup namespace
    without a remount) is not guessed at: ``locate`` says so.
"""

import os

UNLIMITED = 1 << 62  # v1 "no limit" is 9223372036854771712; anything this big is no limit
INSANE = 1 << 64  # a byte count or counter above this is garbage
READ_MAX = 64 << 10  # cgroup and /proc files are small; cap what garbage can cost
_MISSING = (2, 95)  # ENOENT, EOPNOTSUPP (PSI turned off): normal absence, no error

V1_FILES = {
    "limit": "memory.limit_in_bytes",
    "usage": "memory.usage_in_bytes",
    "peak": "memory.max_usage_in_bytes",
}
V2_FILES = {"limit": "memory.max", "usage": "memory.current", "peak": "memory.peak"}


# -- plain parsing -------------------------------------------------------------


def add_error(errors, msg):
    """Append ``msg`` as one printable line, once."""
    line = " ".join("".join(c if c.isprintable() else " " for c in msg).split())[:300]
    if line not in errors:
        errors.append(line)


def garbage(errors, path, value):
    add_error(errors, f"{path}: unexpected content {value[:40]!r}")


def read(root, path, errors, required=False, limit=READ_MAX):
    """Text of ``path`` or None; an error line unless it is simply missing."""
    try:
        return root.read_text(path, limit)
    except OSError as e:
        if e.errno in _MISSING and not required:
            return None
        if e.errno == 20:  # ENOTDIR: a file where a directory should be
            add_error(errors, f"cannot read {path}: a parent is not a directory")
        else:
            add_error(errors, f"cannot read {path}: {e.strerror or type(e).__name__}")
    except ValueError:  # a NUL byte in the path
        add_error(errors, f"cannot read {path!r}: invalid path")
    return None


def count(text, path, errors, limit=False):
    """A non-negative int from a one-number file; for ``limit``, None means no limit."""
    if text is None:
        return None
    s = text.strip()
    if limit and s == "max":
        return None
    if not (s.isascii() and s.isdigit()) or len(s) > 20 or int(s) >= INSANE:
        garbage(errors, path, s)
        return None
    v = int(s)
    return None if limit and v >= UNLIMITED else v


def keyed(text):
    """``{first word: second word}`` of a ``key value`` file (last value wins)."""
    out = {}
    if text:
        for line in text.split("\n"):
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = parts[1]
    return out


def field(fields, key, path, errors):
    """The int of ``fields[key]`` (None when absent, None + error when garbage)."""
    s = fields.get(key)
    if s is None:
        return None
    if not (s.isascii() and s.isdigit()) or len(s) > 20 or int(s) >= INSANE:
        garbage(errors, f"{path} {key}", s)
        return None
    return int(s)


def clean_path(p):
    """A cgroup path as a tuple of components, or None when it is not one."""
    if not p.startswith("/") or "\x00" in p:
        return None
    parts = tuple(c for c in p.split("/") if c and c != ".")
    if ".." in parts:
        return None
    return parts


def is_inside(path, scope):
    """Whether cgroup ``path`` is ``scope`` or lies below it (``/ab`` is not inside ``/a``)."""
    p, s = clean_path(path or ""), clean_path(scope or "")
    if p is None or s is None:
        return False
    return p[: len(s)] == s


def parse_membership(text):
    """``(v2_path, {v1 controller: path})`` from ``/proc/PID/cgroup``."""
    v2 = None
    v1 = {}
    for line in (text or "").split("\n"):
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and not controllers:
            v2 = path
        else:
            for c in controllers.split(","):
                if c:
                    v1.setdefault(c, path)
    return v2, v1


def unescape(s):
    """mountinfo escapes space, tab, newline and backslash as octal ``\\040``."""
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and s[i + 1 : i + 4].isdigit() and len(s[i + 1 : i + 4]) == 3:
            try:
                out.append(chr(int(s[i + 1 : i + 4], 8)))
                i += 4
                continue
            except ValueError:
                pass  # not octal (e.g. \089): keep the backslash as it is
        out.append(c)
        i += 1
    return "".join(out)


def parse_mounts(text):
    """``{"cgroup2": [(root, mountpoint)], <v1 controller>: [(root, mountpoint)]}``."""
    found = {}
    for line in (text or "").split("\n"):
        f = line.split(" ")  # single spaces: an empty source ("- tmpfs  rw") is an empty field
        try:
            sep = f.index("-", 6)
        except ValueError:
            continue
        if len(f) < sep + 2:
            continue
        fstype = f[sep + 1]
        where = (unescape(f[3]), unescape(f[4]))
        if not where[1].startswith("/"):
            continue
        if fstype == "cgroup2":
            found.setdefault("cgroup2", []).append(where)
        elif fstype == "cgroup" and len(f) > sep + 3:
            for opt in f[sep + 3].split(","):
                found.setdefault(opt, []).append(where)
    return found


def join(base, parts):
    return base.rstrip("/") + "".join("/" + p for p in parts)


def default_mounts(root):
    """Mount points when /proc/self/mountinfo says nothing: the usual places."""
    m = {"memory": [("/", "/sys/fs/cgroup/memory")], "pids": [("/", "/sys/fs/cgroup/pids")]}
    for mp in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if root.exists(mp + "/cgroup.controllers"):
            m["cgroup2"] = [("/", mp)]
            break
    return m


INIT_CGROUP_NS = "cgroup:[4026531835]"  # the initial cgroup namespace's fixed inode
SEARCH_MAX = 5000  # directories looked at to find our cgroup below a /../.. mount root


def climb(mroot):
    """``(ups, rest)`` of a mount root: ``/../..`` is ``(2, ())``, ``/a`` is ``(0, ("a",))``."""
    comps = [c for c in (mroot or "/").split("/") if c and c != "."]
    ups = 0
    while ups < len(comps) and comps[ups] == "..":
        ups += 1
    rest = tuple(comps[ups:])
    return ups, (None if ".." in rest else rest)


def find_member(root, mp, depth, rel, pid, budget=SEARCH_MAX):
    """The directory ``depth`` levels below ``mp`` (then ``rel``) whose cgroup.procs has ``pid``.

    ``(components below mp, None)``, or ``(None, reason)``.
    """
    want = str(pid)
    frontier, seen = [()], 0
    for _ in range(depth):
        nxt = []
        for parts in frontier:
            try:
                names = sorted(root.listdir(join(mp, parts)))
            except OSError:
                continue
            for n in names:
                seen += 1
                if seen > budget:
                    return None, f"more than {budget} cgroups to search"
                if root.exists(join(mp, (*parts, n, "cgroup.procs"))):
                    nxt.append((*parts, n))
        frontier = nxt
    for parts in frontier:
        try:
            procs = root.read_text(join(mp, parts + rel + ("cgroup.procs",)), 4 << 20)
        except OSError:
            continue
        if want in procs.split():
            return parts + rel, None
    return None, "no cgroup there lists this process"


def locate(root, mounts, path, pid=None, notes=None):
    """The cgroup ``path`` in the first fitting mount: ``(levels, mountpoint)``, or None.

    ``levels`` is a list of ``(directory, cgroup path label)`` from the cgroup up to
    the mount's root. A mount whose root contains the path is used as the container
    view (the mount's root stripped); a mount whose root lies above ours (``/../..``:
    a cgroup namespace without a remount) is searched for the cgroup that lists
    ``pid`` (labels are then paths below that mount's root); otherwise the path is
    taken as relative to the mount (a cgroup namespace, remounted). When the
    directory exists nowhere, the mount point itself stands in (one level). What
    could not be resolved, and how a path was found, goes into ``notes``.
    """
    notes = {} if notes is None else notes
    parts = clean_path(path)
    if parts is None:
        return None
    fallback = None
    for mroot, mp in mounts:
        ups, mrest = climb(mroot)
        if ups:
            if mrest or pid is None:
                continue  # that mount's root is not an ancestor of ours
            found, why = find_member(root, mp, ups, parts, pid)
            if found is None:
                notes["unresolved"] = (
                    f"the cgroup mount at {mp} starts above this cgroup namespace "
                    f"(root {mroot}) and this process's cgroup was not found in it: {why}"
                )
                continue
            notes["found_by_search"] = mp
            return [
                (join(mp, found[:k]), join("", found[:k]) or "/") for k in range(len(found), -1, -1)
            ], mp
        mparts = mrest
        if mparts is not None and parts[: len(mparts)] == mparts:
            rel, base = parts[len(mparts) :], mparts
        else:
            rel, base = parts, ()
        if root.exists(join(mp, rel)):
            return [
                (join(mp, rel[:k]), join("", base + rel[:k]) or "/")
                for k in range(len(rel), -1, -1)
            ], mp
        if fallback is None and root.exists(mp):
            fallback = [(mp, join("", base) or "/")], mp
    if "unresolved" in notes:
        return None  # never the global root in place of ours
    return fallback


class View:
    """The cgroup mounts as this process sees them, and any process's place in them."""

    def __init__(self, root, errors=None):
        self.root = root
        self.errors = [] if errors is None else errors
        self._mounts = None
        self.notes = {}  # kind -> {"unresolved": why, "found_by_search": mountpoint}

    def self_pid(self):
        """This process's pid as the fixture tree (or the real system) has it."""
        if self.root.real:
            return os.getpid()
        try:
            return int(self.root.read_text("/proc/self/stat", 4096).split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def namespace(self):
        """ "initial", "own" (a cgroup namespace of its own: paths are relative to its
        root, and the kernel log's paths cannot be matched to ours) or None (unknown)."""
        p = self.root.path("/proc/self/ns/cgroup")
        try:
            link = os.readlink(p)
        except OSError:
            try:
                link = self.root.read_text("/proc/self/ns/cgroup", 4096).strip()
            except OSError:
                return None
        if not link.startswith("cgroup:["):
            return None
        return "initial" if link == INIT_CGROUP_NS else "own"

    @property
    def mounts(self):
        """``parse_mounts`` of /proc/self/mountinfo, read on first use."""
        if self._mounts is None:
            # mountinfo can be long (hundreds of mounts): read all of it
            text = read(self.root, "/proc/self/mountinfo", self.errors, limit=4 << 20)
            self._mounts = parse_mounts(text)
            if text and " - " not in text:
                garbage(self.errors, "/proc/self/mountinfo", text.strip())
            if "cgroup2" not in self._mounts and "memory" not in self._mounts:
                self._mounts.update(default_mounts(self.root))
        return self._mounts

    def membership(self, pid="self"):
        """``(v2 path, {v1 controller: path}, raw text)`` of a process; (None, {}, None)."""
        path = f"/proc/{pid}/cgroup"
        text = read(self.root, path, self.errors if pid == "self" else [])
        v2, v1 = parse_membership(text)
        if pid == "self" and text and text.strip() and v2 is None and not v1:
            garbage(self.errors, path, text.strip())
        return v2, v1, text

    def levels(self, kind, path, pid=None):
        """``locate`` in the mounts of ``kind`` ("cgroup2", "memory", "pids"): levels or None.

        ``pid``: whose cgroup it is (default: this process), to find it below a mount
        that starts above our cgroup namespace.
        """
        if path is None or not self.mounts.get(kind):
            return None
        notes = self.notes.setdefault(kind, {}) if pid is None else {}
        who = self.self_pid() if pid is None else pid
        found = locate(self.root, self.mounts[kind], path, who, notes)
        if found is None and notes.get("unresolved") and pid is None:
            add_error(self.errors, notes["unresolved"] + ": its limit is unknown")
        return found[0] if found else None

    def memory_levels(self, v2_path, v1_paths, pid=None):
        """``(version, levels)`` of the memory controller for a membership, or (None, None).

        v1 wins where the process has a v1 ``memory`` line (v1 and hybrid systems).
        """
        if "memory" in v1_paths:
            levels = self.levels("memory", v1_paths["memory"], pid)
            return (1, levels) if levels else (None, None)
        levels = self.levels("cgroup2", v2_path, pid)
        return (2, levels) if levels else (None, None)

    def pids_levels(self, v2_path, v1_paths, pid=None):
        if "pids" in v1_paths:
            return self.levels("pids", v1_paths["pids"], pid)
        return self.levels("cgroup2", v2_path, pid)

    def of_pid(self, pid):
        """``(version, path)`` of a process's memory cgroup, or None."""
        v2, v1, text = self.membership(pid)
        if text is None:
            return None
        if "memory" in v1 and self.mounts.get("memory"):
            return 1, v1["memory"]
        if v2 is not None and self.mounts.get("cgroup2"):
            return 2, v2
        return None
