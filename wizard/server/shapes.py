"""The JSON shapes of the server extension's API and events: the one place they are named.

The TypeScript plugin declares the same interfaces (``labextension/src/shapes.ts``);
``tests/test_server_ext.py`` checks that both name the same fields.
"""

from __future__ import annotations

from typing import TypedDict


class OwnKernel(TypedDict):
    """One kernel of this server's kernel manager."""

    kernel_id: str
    path: str | None  # notebook path relative to the server root
    kernel_name: str | None
    execution_state: str
    idle_seconds: float | None
    rss_bytes: int | None  # its process tree's resident memory
    local: bool  # its process is this server's child (measured, recorded exactly)


class LeftKernel(OwnKernel):
    reason: str


class HaltPlan(TypedDict):
    """``GET /api/kernel-wizard/halt-idle``."""

    threshold: float
    halt: list[OwnKernel]
    left: list[LeftKernel]
    freed_bytes: int


class HaltAnswer(TypedDict):
    """``POST /api/kernel-wizard/halt-idle`` with ``{"kernel_ids": [...]}``."""

    halted: list[OwnKernel]
    failed: list[LeftKernel]
    kept: list[LeftKernel]  # confirmed, but no longer idle: left running
    gone: list[str]  # confirmed ids this server no longer has
    freed_bytes: int


class PreviousAnswer(TypedDict):
    """``GET /api/kernel-wizard/previous``: ``previous.PreviousServer`` with its text."""

    stopped_cleanly: bool | None  # None: nothing was running, nothing to tell
    last_record: float | None  # the previous server's last record: it stopped after it
    started: float | None  # this server's start: it had stopped before it
    notebooks: list[str]  # the kernels that ended with it (file names)
    usage_bytes: int | None
    limit_bytes: int | None
    cause: str | None  # "oom-kill" or None
    certainty: str  # proved, likely, unknown
    evidence: list[str]
    message: str  # the paragraph to show; "" when there is nothing to tell
    label: str  # the section of the site
    url: str


DEATH_EVENT = "https://events.kernel-wizard.org/kernel-wizard/kernel-death/v1"
DEATH_EVENT_VERSION = "1"
