"""The JSON shapes of the server extension's API and events: the one place they are named.

The TypeScript plugin declares the same interfaces (``labextension/src/shapes.ts``);
``tests/test_server_ext.py`` checks that both name the same fields.
"""

from typing import List, Optional, TypedDict  # noqa: UP035 (the wizard runs on 3.9)


class OwnKernel(TypedDict):
    """One kernel of this server's kernel manager."""

    kernel_id: str
    path: Optional[str]  # noqa: UP045 notebook path relative to the server root
    kernel_name: Optional[str]  # noqa: UP045
    execution_state: str
    idle_seconds: Optional[float]  # noqa: UP045
    rss_bytes: Optional[int]  # noqa: UP045 its process tree's resident memory
    local: bool  # its process is this server's child (measured, recorded exactly)


class LeftKernel(OwnKernel):
    reason: str


class HaltPlan(TypedDict):
    """``GET /api/kernel-wizard/halt-idle``."""

    threshold: float
    halt: List[OwnKernel]  # noqa: UP006
    left: List[LeftKernel]  # noqa: UP006
    freed_bytes: int


class HaltAnswer(TypedDict):
    """``POST /api/kernel-wizard/halt-idle`` with ``{"kernel_ids": [...]}``."""

    halted: List[OwnKernel]  # noqa: UP006
    failed: List[LeftKernel]  # noqa: UP006
    kept: List[LeftKernel]  # noqa: UP006 confirmed, but no longer idle: left running
    gone: List[str]  # noqa: UP006 confirmed ids this server no longer has
    freed_bytes: int


DEATH_EVENT = "https://events.kernel-wizard.org/kernel-wizard/kernel-death/v1"
DEATH_EVENT_VERSION = "1"
