"""Memory: the limit in force, what is used against it, swap, pressure, pids, OOM kills.

``probe(root)`` returns the dict described below; every file is read through
``root`` (a ``wizard.system.sysroot.SysRoot``), and a file that is missing where that is
normal (``memory.peak`` on older kernels, ``memsw`` without swap accounting, PSI
turned off) gives None silently, while one that is unreadable or holds garbage
gives None plus one line in ``errors``.

Linux
    The process's own cgroups come from ``/proc/self/cgroup`` (``0::/path`` for the
    v2 unified hierarchy, ``N:memory:/path`` and ``N:pids:/path`` for v1), their
    mount points from ``/proc/self/mountinfo`` (``/sys/fs/cgroup``,
    ``/sys/fs/cgroup/memory``, ... when it is unreadable). When a mount's root is
    not ``/`` (a container without a cgroup namespace), the cgroup path is taken
    relative to it; when the cgroup's directory does not exist, the mount point
    itself is used. The memory controller is read from v1 when the process has a
    v1 ``memory`` line (v1 and hybrid systems), else from v2.

    The cgroups are walked from the process's own up to the mount's root and the
    smallest limit wins (v2 ``memory.max``, ``max`` = none; v1
    ``memory.limit_in_bytes``, 2**62 or more = none). On v1, the own cgroup's
    ``memory.stat`` ``hierarchical_memory_limit`` also counts: it sees ancestors
    a container cannot. Usage, peak and failcnt are those of the limiting cgroup.

    ``used_bytes`` is the limiting cgroup's usage minus its inactive file cache
    (``memory.stat`` ``inactive_file``, v1 ``total_inactive_file``), the "working
    set" Docker and Kubernetes report: cache the kernel would drop before any
    OOM kill does not count as used. The raw usage is ``cgroup.usage_bytes``.

    ``oom_kills``: v2 ``memory.events`` ``oom_kill`` of the limiting cgroup (it
    counts its descendants too). v1 counts a kill only in the victim's own
    cgroup, so this is the sum of ``memory.oom_control`` ``oom_kill`` from the
    own cgroup up to the limiting one.

    ``oom_events``: v2 ``memory.events`` ``oom`` (times the limit was hit and the
    OOM killer ran or an allocation failed). v1 keeps no such count:
    ``under_oom`` (1 while the cgroup is out of memory right now, e.g. with the OOM
    killer disabled, else 0) is reported instead.

    Swap: the host's ``SwapTotal`` capped by the cgroup's swap limit (v2
    ``memory.swap.max``; v1 ``memory.memsw.limit_in_bytes`` minus the memory
    limit); used is the cgroup's swap usage when the limit is the cgroup's.

    Pressure: the own v2 cgroup's ``memory.pressure``, else ``/proc/pressure/memory``.
    pids: v1 ``pids`` controller when the process has one, else v2; smallest
    ``pids.max`` up the tree; ``pids.current`` and ``pids.events`` ``max`` of that
    cgroup (of the own cgroup when there is no limit).

Elsewhere (no ``/proc``)
    ``psutil.virtual_memory()`` and ``swap_memory()`` (imported only then).
"""

import sys

from wizard.system import kernlog

UNLIMITED = 1 << 62  # v1 "no limit" is 9223372036854771712; anything this big is no limit
_INSANE = 1 << 64  # a byte count or counter above this is garbage
_READ = 64 << 10  # cgroup and /proc files are small; cap what garbage can cost
_MEMINFO_KEYS = ("MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached", "SwapTotal")
_MEMINFO_KEYS += ("SwapFree",)
_MISSING = (2, 95)  # ENOENT, EOPNOTSUPP (PSI turned off): normal absence, no error


def _add(errors, msg):
    """Append ``msg`` as one printable line, once."""
    line = " ".join("".join(c if c.isprintable() else " " for c in msg).split())[:300]
    if line not in errors:
        errors.append(line)


def _read(root, path, errors, required=False, limit=_READ):
    """Text of ``path`` or None; an error line unless it is simply missing."""
    try:
        return root.read_text(path, limit)
    except OSError as e:
        if e.errno in _MISSING and not required:
            return None
        if e.errno == 20:  # ENOTDIR: a file where a directory should be
            _add(errors, f"cannot read {path}: a parent is not a directory")
        else:
            _add(errors, f"cannot read {path}: {e.strerror or type(e).__name__}")
    except ValueError:  # a NUL byte in the path
        _add(errors, f"cannot read {path!r}: invalid path")
    return None


def _garbage(errors, path, value):
    _add(errors, f"{path}: unexpected content {value[:40]!r}")


def _count(text, path, errors, limit=False):
    """A non-negative int from a one-number file; for ``limit``, None means no limit."""
    if text is None:
        return None
    s = text.strip()
    if limit and s == "max":
        return None
    if not (s.isascii() and s.isdigit()) or len(s) > 20 or int(s) >= _INSANE:
        _garbage(errors, path, s)
        return None
    v = int(s)
    return None if limit and v >= UNLIMITED else v


def _keyed(text):
    """``{first word: second word}`` of a ``key value`` file (last value wins)."""
    out = {}
    if text:
        for line in text.split("\n"):
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = parts[1]
    return out


def _field(fields, key, path, errors):
    """The int of ``fields[key]`` (None when absent, None + error when garbage)."""
    s = fields.get(key)
    if s is None:
        return None
    if not (s.isascii() and s.isdigit()) or len(s) > 20 or int(s) >= _INSANE:
        _garbage(errors, f"{path} {key}", s)
        return None
    return int(s)


def _clean_path(p):
    """A cgroup path as a tuple of components, or None when it is not one."""
    if not p.startswith("/") or "\x00" in p:
        return None
    parts = tuple(c for c in p.split("/") if c and c != ".")
    if ".." in parts:
        return None
    return parts


def parse_own_cgroups(text):
    """``(v2_path, {v1 controller: path})`` from ``/proc/self/cgroup``."""
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


def _unescape(s):
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
        f = line.split(" ")
        try:
            sep = f.index("-", 6)
        except ValueError:
            continue
        if len(f) < sep + 2:
            continue
        fstype = f[sep + 1]
        where = (_unescape(f[3]), _unescape(f[4]))
        if not where[1].startswith("/"):
            continue
        if fstype == "cgroup2":
            found.setdefault("cgroup2", []).append(where)
        elif fstype == "cgroup" and len(f) > sep + 3:
            for opt in f[sep + 3].split(","):
                found.setdefault(opt, []).append(where)
    return found


def _join(base, parts):
    return base.rstrip("/") + "".join("/" + p for p in parts)


def locate_cgroup(root, mounts, path):
    """The cgroup ``path`` in the first fitting mount: ``(levels, mountpoint)``.

    ``levels`` is a list of ``(directory, cgroup path label)`` from the own cgroup
    up to the mount's root, or None when the path or mounts are unusable.
    """
    parts = _clean_path(path)
    if parts is None:
        return None
    fallback = None
    for mroot, mp in mounts:
        mparts = _clean_path(mroot)
        if mparts is not None and parts[: len(mparts)] == mparts:
            rel, base = parts[len(mparts) :], mparts  # container view: strip the mount's root
        else:
            rel, base = parts, ()  # namespace: the path is relative to the mount's root
        if root.exists(_join(mp, rel)):
            return [
                (_join(mp, rel[:k]), _join("", base + rel[:k]) or "/")
                for k in range(len(rel), -1, -1)
            ], mp
        if fallback is None and root.exists(mp):
            fallback = [(mp, _join("", base) or "/")], mp
    return fallback


def _default_mounts(root):
    """Mount points when /proc/self/mountinfo says nothing: the usual places."""
    m = {"memory": [("/", "/sys/fs/cgroup/memory")], "pids": [("/", "/sys/fs/cgroup/pids")]}
    for mp in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if root.exists(mp + "/cgroup.controllers"):
            m["cgroup2"] = [("/", mp)]
            break
    return m


def _walk_limit(root, levels, name, errors):
    """Index of the level with the smallest ``name`` limit and that limit, or (None, None)."""
    best = best_at = None
    for i, (d, _) in enumerate(levels):
        path = d + "/" + name
        v = _count(_read(root, path, errors), path, errors, limit=True)
        if v is not None and (best is None or v < best):
            best, best_at = v, i
    return best_at, best


def _memory_cgroup(root, version, levels, errors):
    """The ``cgroup`` part of the result plus internals (keys starting with ``_``),
    or None when this hierarchy has no memory controller for the process.
    """
    own_dir, own_label = levels[0]
    if version == 2:
        lim_name, use_name, peak_name = "memory.max", "memory.current", "memory.peak"
    else:
        lim_name = "memory.limit_in_bytes"
        use_name, peak_name = "memory.usage_in_bytes", "memory.max_usage_in_bytes"
    at, limit = _walk_limit(root, levels, lim_name, errors)
    limit_label = levels[at][1] if at is not None else own_label
    own_stat_path = own_dir + "/memory.stat"
    own_stat = {}
    if version == 1:
        own_stat = _keyed(_read(root, own_stat_path, errors))
        hier = _field(own_stat, "hierarchical_memory_limit", own_stat_path, errors)
        if hier is not None and hier < UNLIMITED and (limit is None or hier < limit):
            # Set by an ancestor this view does not show (a container's parent cgroup).
            limit, at, limit_label = hier, 0, own_label + " (inherited)"
    d = levels[at][0] if at is not None else own_dir

    def number(name):
        path = d + "/" + name
        return _count(_read(root, path, errors), path, errors)

    if limit is None and not root.exists(d + "/" + use_name):
        return None
    usage = number(use_name)
    cg = {
        "version": version,
        "path": own_label,
        "limit_path": limit_label,
        "limit_bytes": limit,
        "usage_bytes": usage,
        "peak_bytes": number(peak_name),
        "failcnt": None,
        "swap_limit_bytes": None,
        "_swap_used": None,
        "_oom_kills": None,
        "_oom_events": None,
    }
    stat_path = d + "/memory.stat"
    stat = own_stat if d == own_dir and version == 1 else _keyed(_read(root, stat_path, errors))
    key = "total_inactive_file" if "total_inactive_file" in stat else "inactive_file"
    cg["_inactive"] = _field(stat, key, stat_path, errors)

    if version == 2:
        # memory.events counts the cgroup's descendants too; "max" (times usage hit
        # memory.max) stands in for v1's failcnt.
        events_path = d + "/memory.events"
        events = _keyed(_read(root, events_path, errors))
        cg["failcnt"] = _field(events, "max", events_path, errors)
        cg["_oom_kills"] = _field(events, "oom_kill", events_path, errors)
        cg["_oom_events"] = _field(events, "oom", events_path, errors)
        cg["swap_limit_bytes"] = _walk_limit(root, levels, "memory.swap.max", errors)[1]
        cg["_swap_used"] = number("memory.swap.current")
        return cg

    # With a memory+swap limit as low as the memory limit, memsw.failcnt is the one that
    # counts the hits: report the larger.
    counts = [
        n for n in (number("memory.failcnt"), number("memory.memsw.failcnt")) if n is not None
    ]
    cg["failcnt"] = max(counts) if counts else None
    # v1 counts a kill only in the victim's own cgroup: add up own .. limiting.
    last = at or 0
    for i in range(last + 1):
        path = levels[i][0] + "/memory.oom_control"
        control = _keyed(_read(root, path, errors))
        n = _field(control, "oom_kill", path, errors)
        if n is not None:
            cg["_oom_kills"] = (cg["_oom_kills"] or 0) + n
        if i == last:
            cg["_oom_events"] = _field(control, "under_oom", path, errors)
    memsw = _walk_limit(root, levels, "memory.memsw.limit_in_bytes", errors)[1]
    hier_sw = _field(own_stat, "hierarchical_memsw_limit", own_stat_path, errors)
    if hier_sw is not None and hier_sw < UNLIMITED and (memsw is None or hier_sw < memsw):
        memsw = hier_sw
    if memsw is not None and limit is not None:
        cg["swap_limit_bytes"] = max(memsw - limit, 0)
    both = number("memory.memsw.usage_in_bytes")
    if both is not None and usage is not None:
        cg["_swap_used"] = max(both - usage, 0)
    return cg


def _pressure(text, path, errors):
    """``{"some_avg10", "some_avg60", "full_avg10", "full_avg60"}`` from a PSI file."""
    if text is None:
        return None
    out = {"some_avg10": None, "some_avg60": None, "full_avg10": None, "full_avg60": None}
    bad = None
    for line in text.split("\n"):
        words = line.split()
        if not words or words[0] not in ("some", "full"):
            continue
        for w in words[1:]:
            k, _, v = w.partition("=")
            key = words[0] + "_" + k
            if key not in out:
                continue
            try:
                f = float(v)
            except ValueError:
                f = -1.0
            if not 0.0 <= f <= 100.0:  # also NaN
                bad = bad or line
                continue
            out[key] = f
    if out["some_avg10"] is None and out["some_avg60"] is None:
        bad = bad or text.strip()
    if bad:
        _garbage(errors, path, bad)
    return None if out["some_avg10"] is None and out["some_avg60"] is None else out


def _pids(root, levels, errors):
    at, limit = _walk_limit(root, levels, "pids.max", errors)
    d, label = levels[at if at is not None else 0]
    current_path = d + "/pids.current"
    current = _count(_read(root, current_path, errors), current_path, errors)
    if limit is None and current is None:
        return None  # no pids controller for this cgroup (e.g. the root cgroup)
    events_path = d + "/pids.events"
    events = _keyed(_read(root, events_path, errors))
    return {
        "max": limit,
        "current": current,
        "events_max": _field(events, "max", events_path, errors),
        "path": label,
    }


def _meminfo(root, errors):
    """``{key: bytes}`` of the fields we use from /proc/meminfo."""
    text = _read(root, "/proc/meminfo", errors, required=True)
    out = {}
    for line in (text or "").split("\n"):
        key, _, rest = line.partition(":")
        if key not in _MEMINFO_KEYS:
            continue
        words = rest.split()
        unit = 1024 if words[1:2] == ["kB"] else 1
        if words and words[0].isascii() and words[0].isdigit() and len(words[0]) <= 20:
            v = int(words[0]) * unit
            if v < _INSANE:
                out[key] = v
                continue
        _garbage(errors, f"/proc/meminfo {key}", rest.strip())
    if text is not None and "MemTotal" not in out:
        _add(errors, "/proc/meminfo: no usable MemTotal")
    if "MemAvailable" not in out and {"MemFree", "Buffers", "Cached"} <= out.keys():
        out["MemAvailable"] = out["MemFree"] + out["Buffers"] + out["Cached"]  # kernels < 3.14
    return out


def _empty(platform):
    return {
        "platform": platform,
        "limit_bytes": None,
        "limit_source": "host",
        "used_bytes": None,
        "available_bytes": None,
        "peak_bytes": None,
        "swap_total_bytes": None,
        "swap_used_bytes": None,
        "host_total_bytes": None,
        "host_available_bytes": None,
        "cgroup": None,
        "oom_kills": None,
        "oom_events": None,
        "host_oom_kills": None,
        "pressure": None,
        "pids": None,
        "oom_log": [],
        "oom_log_status": "empty",
        "errors": [],
    }


def _probe_psutil(out):
    errors = out["errors"]
    out["oom_log_status"] = f"unreadable: no Linux kernel log on {out['platform']}"
    try:
        import psutil
    except ImportError:
        _add(errors, "psutil is not installed: pip install psutil")
        return out
    try:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
    except (OSError, RuntimeError, AttributeError) as e:
        _add(errors, f"psutil could not read memory: {e}")
        return out
    out["host_total_bytes"] = out["limit_bytes"] = int(vm.total)
    out["host_available_bytes"] = out["available_bytes"] = int(vm.available)
    out["used_bytes"] = max(int(vm.total) - int(vm.available), 0)
    out["swap_total_bytes"] = int(sw.total)
    out["swap_used_bytes"] = int(sw.used)
    return out


def _is_linux(root):
    if sys.platform.startswith("linux"):
        return True
    return not root.real and root.exists("/proc")  # a Linux fixture tree on another system


def _ours(kills, cgroup):
    """The kills inside our cgroup's subtree (the kernel log is the whole host's).

    The scope is the cgroup whose limit applies, else our own cgroup. A kill whose
    cgroup the log does not name is kept: it may be ours.
    """
    if not cgroup:
        return kills
    scope = (cgroup.get("limit_path") or cgroup.get("path") or "/").split(" ", 1)[0]
    if cgroup.get("limit_bytes") is None:
        scope = cgroup.get("path") or "/"
    scope = scope.rstrip("/")
    if not scope:
        return kills
    return [
        k
        for k in kills
        if not k.get("memcg") or k["memcg"] == scope or k["memcg"].startswith(scope + "/")
    ]


def probe(root, oom_log=True):
    """Memory limit, usage, swap, pressure, pids and recent OOM kills (see the module doc).

    ``oom_log=False`` skips the kernel log (``oom_log_status`` "unreadable: not read").
    """
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    out = _empty(platform)
    if not _is_linux(root):
        return _probe_psutil(out)
    errors = out["errors"]

    # Host
    mem = _meminfo(root, errors)
    host_total = out["host_total_bytes"] = mem.get("MemTotal")
    host_avail = out["host_available_bytes"] = mem.get("MemAvailable")
    if host_avail is not None and host_total is not None and host_avail > host_total:
        _add(errors, "/proc/meminfo: MemAvailable is larger than MemTotal")
        host_avail = out["host_available_bytes"] = None
    host_swap = mem.get("SwapTotal")
    host_swap_used = None
    if host_swap is not None and mem.get("SwapFree") is not None:
        host_swap_used = max(host_swap - mem["SwapFree"], 0)
    vmstat = _keyed(_read(root, "/proc/vmstat", errors, required=True))
    out["host_oom_kills"] = _field(vmstat, "oom_kill", "/proc/vmstat", errors)

    # Cgroups
    text = _read(root, "/proc/self/cgroup", errors)
    v2_path, v1_paths = parse_own_cgroups(text)
    if text and text.strip() and v2_path is None and not v1_paths:
        _garbage(errors, "/proc/self/cgroup", text.strip())
    mounts = {}
    if v2_path is not None or v1_paths:
        # mountinfo can be long (hundreds of mounts): read all of it
        text = _read(root, "/proc/self/mountinfo", errors, limit=4 << 20)
        mounts = parse_mounts(text)
        if text and " - " not in text:
            _garbage(errors, "/proc/self/mountinfo", text.strip())
        if "cgroup2" not in mounts and "memory" not in mounts:
            mounts.update(_default_mounts(root))

    def levels_of(kind, path):
        if path is None or not mounts.get(kind):
            return None
        found = locate_cgroup(root, mounts[kind], path)
        return found[0] if found else None

    v2_levels = levels_of("cgroup2", v2_path)
    cg = None
    if "memory" in v1_paths:
        levels = levels_of("memory", v1_paths["memory"])
        if levels:
            cg = _memory_cgroup(root, 1, levels, errors)
        elif v1_paths["memory"] != "/":
            _add(errors, f"cgroup {v1_paths['memory']} is not mounted here: its limit is unknown")
    elif v2_levels:
        cg = _memory_cgroup(root, 2, v2_levels, errors)
    elif v2_path not in (None, "/"):
        _add(errors, f"cgroup {v2_path} is not mounted here: its limit is unknown")

    # The limit in force and what is used against it
    swap_limit = inactive = cg_swap_used = None
    if cg is not None:
        inactive = cg.pop("_inactive")
        cg_swap_used = cg.pop("_swap_used")
        out["oom_kills"] = cg.pop("_oom_kills")
        out["oom_events"] = cg.pop("_oom_events")
        swap_limit = cg["swap_limit_bytes"]
        out["cgroup"] = cg
    limit = cg["limit_bytes"] if cg else None
    if limit is not None and (host_total is None or limit < host_total):
        version = cg["version"]
        out["limit_bytes"] = limit
        out["limit_source"] = f"cgroup v{version} {cg['limit_path']}"
        usage = cg["usage_bytes"]
        if usage is not None and inactive is not None:
            usage = max(usage - inactive, 0)
        out["used_bytes"] = usage
        if usage is not None:
            avail = max(limit - usage, 0)
            out["available_bytes"] = avail if host_avail is None else min(avail, host_avail)
        else:
            out["available_bytes"] = host_avail if host_avail is not None else None
        out["peak_bytes"] = cg["peak_bytes"]
        out["swap_used_bytes"] = cg_swap_used if cg_swap_used is not None else host_swap_used
    else:
        out["limit_bytes"] = host_total
        out["limit_source"] = "host"
        if host_total is not None and host_avail is not None:
            out["used_bytes"] = host_total - host_avail
        out["available_bytes"] = host_avail
        out["swap_used_bytes"] = host_swap_used
    if swap_limit is not None:
        out["swap_total_bytes"] = swap_limit if host_swap is None else min(swap_limit, host_swap)
    else:
        out["swap_total_bytes"] = host_swap

    # Pressure: the own v2 cgroup's, else the host's
    pressure = None
    if v2_levels:
        path = v2_levels[0][0] + "/memory.pressure"
        pressure = _pressure(_read(root, path, errors), path, errors)
    if pressure is None:
        path = "/proc/pressure/memory"
        pressure = _pressure(_read(root, path, errors), path, errors)
    out["pressure"] = pressure

    # pids
    levels = levels_of("pids", v1_paths["pids"]) if "pids" in v1_paths else v2_levels
    if levels:
        out["pids"] = _pids(root, levels, errors)

    # Kernel log
    if oom_log:
        log, out["oom_log_status"] = kernlog.oom_log(root)
        out["oom_log"] = _ours(log, out["cgroup"])
    else:
        out["oom_log_status"] = "unreadable: not read"
    return out
