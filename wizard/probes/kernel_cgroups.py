"""Each kernel's own cgroup (its memory limit, usage, OOM and pids counters) and the
time its connection file was written.

A kernel started by a server (JupyterHub's spawner, a systemd unit, a pod) often
lives in another cgroup than the terminal the wizard runs in: the wizard's own limit
says nothing about the kernel's. Each kernel's cgroup is read from
``/proc/PID/cgroup`` and walked up like the wizard's own (the smallest limit wins).
"""

import os

from wizard.system import cgroup_files
from wizard.system.cgroups import View, is_inside


def of_pid(root, view, pid):
    """``{"version", "path", "limit_bytes", "limit_path", "usage_bytes", "oom_kills",
    "own_oom_kills", "pids_max", "pids_current", "pids_refused"}`` of a process, or None."""
    v2, v1, text = view.membership(pid)
    if text is None:
        return None
    errors = []
    version, levels = view.memory_levels(v2, v1, pid)
    if not levels:
        return None
    cg = cgroup_files.read_memory(root, version, levels, errors)
    if cg is None:
        return None
    out = {
        "version": version,
        "path": cg["path"],
        "limit_bytes": cg["limit_bytes"],
        "limit_path": cg["limit_path"],
        "usage_bytes": cg["usage_bytes"],
        "oom_kills": cg["oom_kills"],
        "own_oom_kills": cg["own_oom_kills"],
        "pids_max": None,
        "pids_current": None,
        "pids_refused": None,
    }
    plevels = view.pids_levels(v2, v1, pid)
    pids = cgroup_files.read_pids(root, plevels, errors) if plevels else None
    if pids:
        out["pids_max"], out["pids_current"] = pids["max"], pids["current"]
        out["pids_refused"] = pids["events_max"]
    return out


def _mtime(root, path):
    """When the connection file was last written (a restart reuses the old one), or None."""
    if not path:
        return None
    try:
        return os.stat(root.path(path)).st_mtime
    except (OSError, ValueError):
        return None


def annotate(root, kernels, own_path=None):
    """Set ``cgroup`` on every kernel; return the kernels' cgroups that differ from ours.

    ``own_path``: the wizard's own memory cgroup path. The result is one entry per
    distinct kernel cgroup not equal to it: ``{"path", "limit_bytes", "limit_path",
    "usage_bytes", "oom_kills", "pids": [kernel pids]}``.
    """
    view = View(root, [])
    elsewhere = {}
    for k in kernels:
        k["connection_file_mtime"] = _mtime(root, k.get("connection_file"))
        cg = k["cgroup"] = of_pid(root, view, k["pid"])
        if cg is None or cg["path"] == own_path:
            continue
        entry = elsewhere.setdefault(
            cg["path"],
            {key: cg[key] for key in ("path", "limit_bytes", "limit_path", "usage_bytes")}
            | {"oom_kills": cg["oom_kills"], "pids": []},
        )
        entry["pids"].append(k["pid"])
    return list(elsewhere.values())


def kills_in(mem, cgroups):
    """The kills "elsewhere" (outside the wizard's cgroup) that lie inside a kernel's cgroup.

    Only where the paths compare (the wizard is not in a cgroup namespace of its own,
    where the kernel log's host paths cannot be matched to what it sees).
    """
    if (mem.get("cgroup") or {}).get("host_view") is False:
        return []
    paths = [c["path"] for c in cgroups if c.get("path")]
    return [
        k
        for k in mem.get("oom_log_elsewhere") or []
        if k.get("memcg") and any(is_inside(k["memcg"], p) for p in paths)
    ]
