"""When a kernel is idle: the one definition the idle-kernels rule, ``halt --idle`` and the
walk-through share, so the wizard never counts a kernel that its offered command spares.

Only a Jupyter server knows whether a kernel is running code and when it last did: a
kernel no server reports on has an unknown idle time, never "idle" (its age says
nothing about whether someone waits for its result), and a busy kernel is never idle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wizard.base import thresholds

if TYPE_CHECKING:
    from wizard.base.shapes import Kernel

IDLE, BUSY, ACTIVE, UNKNOWN = "idle", "busy", "active", "unknown"
UNKNOWN_REASON = "no Jupyter server reports its activity, so its idle time is unknown"


def state(k: Kernel, threshold: float | None = None) -> tuple[str, float | None]:
    """``(IDLE | BUSY | ACTIVE | UNKNOWN, seconds idle or None)`` of a kernel dict.

    ``k["idle_seconds"]`` is the time since a server last saw it active (the probes
    set it; None when no server reports on it or it is busy).
    """
    threshold = thresholds.IDLE_SECONDS if threshold is None else threshold
    if k.get("execution_state") == "busy":
        return BUSY, None
    secs = k.get("idle_seconds")
    if secs is None:
        return UNKNOWN, None
    return (IDLE if secs >= threshold else ACTIVE), secs


def worth_halting(
    kernels: Iterable[Kernel], threshold: float | None = None, min_bytes: int | None = None
) -> list[Kernel]:
    """The kernels idle at least ``threshold`` seconds that hold ``min_bytes`` or more."""
    min_bytes = thresholds.IDLE_MIN_BYTES if min_bytes is None else min_bytes
    return [
        k
        for k in kernels
        if state(k, threshold)[0] == IDLE and (k.get("rss_bytes") or 0) >= min_bytes
    ]
