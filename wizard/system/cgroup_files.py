"""What a cgroup holds: its memory limit, usage, peak, OOM counters, pids, pressure.

Each reader takes the ``levels`` that ``cgroups.locate`` returns (the cgroup, then
each ancestor up to its mount's root) and walks them the same way for every user
(the memory probe, the recorder, ``wizard run``): the smallest limit in force wins,
usage and counters are those of the limiting cgroup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wizard.system.cgroups import UNLIMITED, V1_FILES, V2_FILES, count, field, garbage, keyed, read

if TYPE_CHECKING:
    from wizard.system.sysroot import SysRoot

# What cgroups.locate returns: (directory, the cgroup's path as /proc shows it), the
# cgroup first, then each ancestor up to its mount's root.
Levels = Sequence[tuple[str, str]]


def walk_limit(
    root: SysRoot, levels: Levels, name: str, errors: list[str]
) -> tuple[int | None, int | None]:
    """Index of the level with the smallest ``name`` limit and that limit, or (None, None)."""
    best: int | None = None
    best_at: int | None = None
    for i, (d, _) in enumerate(levels):
        path = d + "/" + name
        v = count(read(root, path, errors), path, errors, limit=True)
        if v is not None and (best is None or v < best):
            best, best_at = v, i
    return best_at, best


def read_memory(
    root: SysRoot, version: int, levels: Levels, errors: list[str]
) -> dict[str, Any] | None:
    """The memory facts of a cgroup: a dict, or None when it has no memory controller.

    Keys: version, path, limit_path, limit_bytes, usage_bytes, peak_bytes, failcnt,
    swap_limit_bytes, the counters swap_used, oom_kills, oom_events, inactive, and
    the cgroup's own own_usage_bytes, own_working_set and own_oom_kills.
    v2 ``memory.events`` counts descendants too; v1 counts a kill only in the
    victim's own cgroup, so kills are summed from the cgroup up to the limiting one.
    """
    own_dir, own_label = levels[0]
    names = V2_FILES if version == 2 else V1_FILES
    at, limit = walk_limit(root, levels, names["limit"], errors)
    limit_label = levels[at][1] if at is not None else own_label
    own_stat_path = own_dir + "/memory.stat"
    own_stat: dict[str, str] = {}
    if version == 1:
        own_stat = keyed(read(root, own_stat_path, errors))
        hier = field(own_stat, "hierarchical_memory_limit", own_stat_path, errors)
        if hier is not None and hier < UNLIMITED and (limit is None or hier < limit):
            # Set by an ancestor this view does not show (a container's parent cgroup).
            limit, at, limit_label = hier, 0, own_label + " (inherited)"
    d = levels[at][0] if at is not None else own_dir

    def number(name: str) -> int | None:
        path = d + "/" + name
        n: int | None = count(read(root, path, errors), path, errors)
        return n

    if limit is None and not root.exists(d + "/" + names["usage"]):
        return None
    usage = number(names["usage"])
    cg: dict[str, Any] = {
        "version": version,
        "path": own_label,
        "limit_path": limit_label,
        "limit_bytes": limit,
        "usage_bytes": usage,
        "peak_bytes": number(names["peak"]),
        "failcnt": None,
        "swap_limit_bytes": None,
        "swap_used": None,
        "oom_kills": None,
        "oom_events": None,
    }
    stat_path = d + "/memory.stat"
    stat = own_stat if d == own_dir and version == 1 else keyed(read(root, stat_path, errors))
    key = "total_inactive_file" if "total_inactive_file" in stat else "inactive_file"
    cg["inactive"] = field(stat, key, stat_path, errors)

    # The cgroup's own figures, beside the limiting one's: a recorder watching one
    # kernel's cgroup counts the kills and usage of that cgroup alone.
    if d == own_dir:
        cg["own_usage_bytes"], own_inactive = usage, cg["inactive"]
    else:
        own_stat = own_stat or keyed(read(root, own_stat_path, errors))
        path = own_dir + "/" + names["usage"]
        cg["own_usage_bytes"] = count(read(root, path, errors), path, errors)
        own_key = "total_inactive_file" if "total_inactive_file" in own_stat else "inactive_file"
        own_inactive = field(own_stat, own_key, own_stat_path, errors)
    if cg["own_usage_bytes"] is not None and own_inactive is not None:
        cg["own_working_set"] = max(cg["own_usage_bytes"] - own_inactive, 0)
    else:
        cg["own_working_set"] = cg["own_usage_bytes"]
    if version == 2:
        own_events_path = own_dir + "/memory.events"
        own_events = keyed(read(root, own_events_path, errors))
        cg["own_oom_kills"] = field(own_events, "oom_kill", own_events_path, errors)
    else:
        path = own_dir + "/memory.oom_control"
        cg["own_oom_kills"] = field(keyed(read(root, path, errors)), "oom_kill", path, errors)

    if version == 2:
        # "max" (times usage hit memory.max) stands in for v1's failcnt.
        events_path = d + "/memory.events"
        events = keyed(read(root, events_path, errors))
        cg["failcnt"] = field(events, "max", events_path, errors)
        cg["oom_kills"] = field(events, "oom_kill", events_path, errors)
        cg["oom_events"] = field(events, "oom", events_path, errors)
        cg["swap_limit_bytes"] = walk_limit(root, levels, "memory.swap.max", errors)[1]
        cg["swap_used"] = number("memory.swap.current")
        return cg

    # With a memory+swap limit as low as the memory limit, memsw.failcnt is the one that
    # counts the hits: report the larger.
    counts = [
        n for n in (number("memory.failcnt"), number("memory.memsw.failcnt")) if n is not None
    ]
    cg["failcnt"] = max(counts) if counts else None
    last = at or 0
    for i in range(last + 1):
        path = levels[i][0] + "/memory.oom_control"
        control = keyed(read(root, path, errors))
        n = field(control, "oom_kill", path, errors)
        if n is not None:
            cg["oom_kills"] = (cg["oom_kills"] or 0) + n
        if i == last:
            cg["oom_events"] = field(control, "under_oom", path, errors)
    memsw = walk_limit(root, levels, "memory.memsw.limit_in_bytes", errors)[1]
    hier_sw = field(own_stat, "hierarchical_memsw_limit", own_stat_path, errors)
    if hier_sw is not None and hier_sw < UNLIMITED and (memsw is None or hier_sw < memsw):
        memsw = hier_sw
    if memsw is not None and limit is not None:
        cg["swap_limit_bytes"] = max(memsw - limit, 0)
    both = number("memory.memsw.usage_in_bytes")
    if both is not None and usage is not None:
        cg["swap_used"] = max(both - usage, 0)
    return cg


def working_set(cg: Mapping[str, Any]) -> int | None:
    """Usage less inactive file cache (what Docker and Kubernetes call used), or None."""
    usage: int | None = cg.get("usage_bytes")
    if usage is not None and cg.get("inactive") is not None:
        inactive: int = cg["inactive"]
        return max(usage - inactive, 0)
    return usage


def read_pressure(text: str | None, path: str, errors: list[str]) -> dict[str, float | None] | None:
    """``{"some_avg10", "some_avg60", "full_avg10", "full_avg60"}`` from a PSI file."""
    if text is None:
        return None
    out: dict[str, Any] = {"some_avg10": None, "some_avg60": None, "full_avg10": None}
    out["full_avg60"] = None
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
        garbage(errors, path, bad)
    return None if out["some_avg10"] is None and out["some_avg60"] is None else out


def read_pids(root: SysRoot, levels: Levels, errors: list[str]) -> dict[str, Any] | None:
    """``{"max", "current", "events_max", "path"}`` of the limiting pids cgroup, or None.

    ``events_max`` sums ``pids.events`` ``max`` from the own cgroup up to the limiting
    one: a refused fork is counted in the cgroup that forked (kernel 6.1), not in
    the ancestor whose limit refused it.
    """
    at, limit = walk_limit(root, levels, "pids.max", errors)
    d, label = levels[at if at is not None else 0]
    current_path = d + "/pids.current"
    current = count(read(root, current_path, errors), current_path, errors)
    if limit is None and current is None:
        return None  # no pids controller for this cgroup (e.g. the root cgroup)
    refused = None
    for i in range((at or 0) + 1):
        events_path = levels[i][0] + "/pids.events"
        n = field(keyed(read(root, events_path, errors)), "max", events_path, errors)
        if n is not None:
            refused = (refused or 0) + n
    return {"max": limit, "current": current, "events_max": refused, "path": label}


def read_high(root: SysRoot, levels: Levels, errors: list[str]) -> dict[str, Any] | None:
    """memory.high (v2): ``{"high_bytes", "high_path", "high_events"}`` or None.

    The smallest ``memory.high`` up the tree is the throttling limit: above it the
    kernel reclaims hard and slows the cgroup down, without killing. ``high_events``
    is ``memory.events`` ``high`` of that cgroup (times usage went over it).
    """
    at, high = walk_limit(root, levels, "memory.high", errors)
    if at is None:
        return None
    d, label = levels[at]
    events_path = d + "/memory.events"
    events = keyed(read(root, events_path, errors))
    return {
        "high_bytes": high,
        "high_path": label,
        "high_events": field(events, "high", events_path, errors),
    }


def read_oom_group(
    root: SysRoot, levels: Levels, upto: int, errors: list[str]
) -> tuple[bool | None, int | None]:
    """``(memory.oom.group set anywhere from the cgroup up to level ``upto``,
    ``oom_group_kill`` of the limiting cgroup's memory.events)`` (v2), None when unknown."""
    group: bool | None = None
    for i in range(min(upto, len(levels) - 1) + 1):
        path = levels[i][0] + "/memory.oom.group"
        v = count(read(root, path, errors), path, errors)
        if v is not None:
            group = bool(group) or v == 1
    events_path = levels[min(upto, len(levels) - 1)][0] + "/memory.events"
    kills = field(keyed(read(root, events_path, errors)), "oom_group_kill", events_path, errors)
    return group, kills
