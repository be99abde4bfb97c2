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

from wizard.system import cgroup_files, kernlog, procfs, userspace_oom
from wizard.system.cgroups import View, add_error, field, garbage, is_inside, keyed, read

_MEMINFO_KEYS = (
    "MemTotal",
    "MemAvailable",
    "MemFree",
    "Buffers",
    "Cached",
    "SwapTotal",
    "SwapFree",
)
_INSANE = 1 << 64


def _meminfo(root, errors):
    """``{key: bytes}`` of the fields we use from /proc/meminfo."""
    text = read(root, procfs.MEMINFO, errors, required=True)
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
        garbage(errors, f"{procfs.MEMINFO} {key}", rest.strip())
    if text is not None and "MemTotal" not in out:
        add_error(errors, f"{procfs.MEMINFO}: no usable MemTotal")
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
        "high_bytes": None,
        "high_path": None,
        "high_events": None,
        "oom_group": None,
        "oom_group_kills": None,
        "oom_log": [],
        "oom_log_elsewhere": [],
        "oom_log_status": "empty",
        "userspace_oom": None,
        "notes": [],
        "errors": [],
    }


def _probe_psutil(out):
    errors = out["errors"]
    out["oom_log_status"] = f"unreadable: no Linux kernel log on {out['platform']}"
    try:
        import psutil
    except ImportError:
        add_error(errors, "psutil is not installed: pip install psutil")
        return out
    try:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
    except (OSError, RuntimeError, AttributeError) as e:
        add_error(errors, f"psutil could not read memory: {e}")
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
    return not root.real and procfs.has_proc(root)  # a Linux fixture tree elsewhere


def kill_scope(cgroup, namespace):
    """The cgroup (the kernel log's, i.e. the host's view) whose kills are ours, or None.

    The cgroup whose limit applies, else our own. None when no kill can be proven
    ours: in a cgroup namespace of our own the paths we see are relative to a root
    whose host path is hidden (unless it was found below a mount of the host's root).
    """
    if not cgroup or cgroup.get("host_view") is False:
        return None
    if namespace == "own" and not cgroup.get("host_view"):
        return None
    scope = (cgroup.get("limit_path") or cgroup.get("path") or "/").split(" ", 1)[0]
    if cgroup.get("limit_bytes") is None:
        scope = cgroup.get("path") or "/"
    return scope


def split_kills(kills, scope, everything):
    """``(ours, elsewhere)``: a kill is ours only when its cgroup lies inside ``scope``.

    ``everything`` (our scope is the whole machine, seen from its initial cgroup
    namespace): every kill is ours, also those whose cgroup the log does not name.
    """
    if everything:
        return list(kills), []
    ours, elsewhere = [], []
    for k in kills:
        inside = scope is not None and k.get("memcg") and is_inside(k["memcg"], scope)
        (ours if inside else elsewhere).append(k)
    return ours, elsewhere


def userspace(root, dirs, scope, everything, daemons=None):
    """systemd-oomd and earlyoom (``userspace_oom.probe``), each kill marked ``ours``:
    True (an oomd kill of a cgroup inside ours), None (earlyoom, which is not
    cgroup-aware, killing a process of this user: possibly ours), else False."""
    import os

    found = userspace_oom.probe(root, dirs, daemons)
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for k in found["kills"]:
        if k["killer"] == "systemd-oomd":
            inside = everything or (scope is not None and is_inside(k["cgroup"], scope))
            k["ours"] = bool(inside)
        else:
            k["ours"] = None if uid in (0, k["uid"]) else False
    return found


def _memory_extras(root, view, version, levels, out, errors):
    """memory.high, memory.oom.group and the namespace notes of the memory cgroup."""
    cg = out["cgroup"]
    notes = out["notes"]
    if version == 2:
        high = cgroup_files.read_high(root, levels, errors) or {}
        out["high_bytes"] = high.get("high_bytes")
        out["high_path"] = high.get("high_path")
        out["high_events"] = high.get("high_events")
        at = next((i for i, (_, label) in enumerate(levels) if label == cg["limit_path"]), 0)
        out["oom_group"], out["oom_group_kills"] = cgroup_files.read_oom_group(
            root, levels, at, errors
        )
    kind = "cgroup2" if version == 2 else "memory"
    searched = view.notes.get(kind, {}).get("found_by_search")
    namespace = view.namespace()
    cg["namespace"] = namespace
    top = levels[-1][0]
    if searched:
        # Found below a mount that starts above our namespace: labels are paths
        # below that mount's root, the host's own when it is the real root.
        cg["host_view"] = version == 2 and not root.exists(top + "/memory.max")
        notes.append(
            f"this process is in a cgroup namespace; its cgroup {cg['path']} was found "
            f"by its pid below the cgroup mount {searched}"
        )
    elif namespace == "own":
        cg["host_view"] = False
        if version == 2 and root.exists(top + "/memory.max"):
            notes.append(
                "this process is in a cgroup namespace whose root has its own memory.max: "
                "that limit is read, the cgroups above it (and their limits) are hidden"
            )
        else:
            notes.append(
                "this process is in a cgroup namespace: the cgroups above its root "
                "(and their limits) are hidden"
            )
        notes.append(
            "the kernel log names cgroups as the host sees them: no kill in it can be "
            "proven to be in this namespace's cgroups"
        )
    else:
        cg["host_view"] = None if namespace is None else True


def _hidden_limit(cg, out):
    """A cgroup namespace whose root has no limit: one above it (a pod's) is out of sight.
    What the root itself shows is used: its peak and its count of OOM kills."""
    out["peak_bytes"] = cg["peak_bytes"]
    out["notes"].append(
        "no memory limit is set at or below this cgroup namespace's root; a limit set above "
        "it (a pod's, say) would still apply and cannot be seen from inside, so the host's "
        "memory is shown, and the limit in force may be lower"
    )
    if out.get("oom_kills"):
        out["notes"].append(
            f"this namespace's root counts {out['oom_kills']} OOM kill(s) in its cgroups "
            "(memory.events): those kills were of processes in this namespace"
        )


def probe(root, oom_log=True, daemons=None):
    """Memory limit, usage, swap, pressure, pids and recent OOM kills (see the module doc).

    ``oom_log=False`` skips the kernel log (``oom_log_status`` "unreadable: not read").
    ``daemons``: the userspace OOM killers the caller's own scan of /proc found running
    (``collect`` takes them from the kernels probe); None to look here.
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
        add_error(errors, f"{procfs.MEMINFO}: MemAvailable is larger than MemTotal")
        host_avail = out["host_available_bytes"] = None
    host_swap = mem.get("SwapTotal")
    host_swap_used = None
    if host_swap is not None and mem.get("SwapFree") is not None:
        host_swap_used = max(host_swap - mem["SwapFree"], 0)
    vmstat = keyed(read(root, procfs.VMSTAT, errors, required=True))
    out["host_oom_kills"] = field(vmstat, "oom_kill", procfs.VMSTAT, errors)

    # Cgroups
    view = View(root, errors)
    v2_path, v1_paths, _ = view.membership()
    v2_levels = view.levels("cgroup2", v2_path) if v2_path is not None or v1_paths else None
    cg = None
    mem_version, mem_levels = None, None
    if "memory" in v1_paths:
        levels = view.levels("memory", v1_paths["memory"])
        if levels:
            cg = cgroup_files.read_memory(root, 1, levels, errors)
            mem_version, mem_levels = 1, levels
        elif v1_paths["memory"] != "/":
            add_error(
                errors, f"cgroup {v1_paths['memory']} is not mounted here: its limit is unknown"
            )
    elif v2_levels:
        cg = cgroup_files.read_memory(root, 2, v2_levels, errors)
        mem_version, mem_levels = 2, v2_levels
    elif v2_path not in (None, "/"):
        add_error(errors, f"cgroup {v2_path} is not mounted here: its limit is unknown")

    # The limit in force and what is used against it
    swap_limit = inactive = cg_swap_used = None
    if cg is not None:
        inactive = cg.pop("inactive")
        cg_swap_used = cg.pop("swap_used")
        out["oom_kills"] = cg.pop("oom_kills")
        out["oom_events"] = cg.pop("oom_events")
        for key in ("own_usage_bytes", "own_working_set", "own_oom_kills"):
            cg.pop(key)
        swap_limit = cg["swap_limit_bytes"]
        out["cgroup"] = cg
        _memory_extras(root, view, mem_version, mem_levels, out, errors)
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
    if cg and limit is None and cg.get("namespace") == "own" and cg.get("host_view") is False:
        _hidden_limit(cg, out)
    if swap_limit is not None:
        out["swap_total_bytes"] = swap_limit if host_swap is None else min(swap_limit, host_swap)
    else:
        out["swap_total_bytes"] = host_swap

    # Pressure: the own v2 cgroup's, else the host's
    pressure = None
    if v2_levels:
        path = v2_levels[0][0] + "/memory.pressure"
        pressure = cgroup_files.read_pressure(read(root, path, errors), path, errors)
    if pressure is None:
        path = procfs.PRESSURE
        pressure = cgroup_files.read_pressure(read(root, path, errors), path, errors)
    out["pressure"] = pressure

    # pids
    levels = view.levels("pids", v1_paths["pids"]) if "pids" in v1_paths else v2_levels
    if levels:
        out["pids"] = cgroup_files.read_pids(root, levels, errors)

    # Kernel log
    if oom_log:
        log, out["oom_log_status"] = kernlog.oom_log(root)
        cg = out["cgroup"]
        scope = kill_scope(cg, view.namespace())
        # Our scope is the whole machine only at the root of the initial namespace.
        everything = (cg is None or scope == "/") and view.namespace() != "own"
        out["oom_log"], out["oom_log_elsewhere"] = split_kills(log, scope, everything)
        dirs = [d for d, _ in mem_levels or ()]
        out["userspace_oom"] = userspace(root, dirs, scope, everything, daemons)
    else:
        out["oom_log_status"] = "unreadable: not read"
    return out
