"""What the kernel log said about which pid, kept for a while: the recorder's memory of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from wizard.system import kernlog

if TYPE_CHECKING:
    pass


class Evidence:
    """What the kernel log said about which pid, kept for a while: kills and faults."""

    KEEP_SECONDS = 600

    def __init__(self) -> None:
        self.kills: dict[int, dict[str, Any]] = {}  # pid -> {"time", "rss_bytes", "cgroup_oom"}
        self.faults: dict[int, tuple[float | None, str]] = {}  # pid -> (time, signal name)

    def feed(self, entries: list[tuple[float | None, str]] | None) -> None:
        """Take ``[(epoch or None, message)]`` from ``kmsg.Follower.read``."""
        if not entries:
            return
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
            fault = kernlog.parse_fault(msg)
            if fault:
                self.faults[fault[0]] = (when, fault[1])

    def feed_kills(self, kills: Iterable[Mapping[str, Any]] | None) -> None:
        """Take kills as ``kernlog.oom_log`` / ``memory.probe`` return them."""
        for k in kills or []:
            if k.get("pid"):
                self.kills.setdefault(
                    k["pid"],
                    {"time": k.get("time"), "rss_bytes": k.get("rss_bytes"), "cgroup_oom": None},
                )

    def about(
        self, pid: int, since: float | None = None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """``(kill or None, fault signal or None)`` logged for ``pid`` (after ``since``)."""
        kill = self.kills.get(pid)
        if kill and since is not None and kill["time"] is not None and kill["time"] < since - 5:
            kill = None  # an older process that had the same pid
        fault = self.faults.get(pid)
        if fault and since is not None and fault[0] is not None and fault[0] < since - 5:
            fault = None
        return kill, (fault[1] if fault else None)

    def prune(self, now: float) -> None:
        cutoff = now - self.KEEP_SECONDS
        self.kills = {
            p: v for p, v in self.kills.items() if v["time"] is None or v["time"] >= cutoff
        }
        self.faults = {p: v for p, v in self.faults.items() if v[0] is None or v[0] >= cutoff}
