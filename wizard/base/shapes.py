"""The data shapes that cross the layers, by name: what a probe returns, what a rule
finds, what the recorder keeps, what the JSON report holds.

They stay plain dicts at run time (every producer builds a dict literal; JSON and the
tests read them as such); these TypedDicts only name their keys for the reader and
for mypy. Modules import them under ``if TYPE_CHECKING:``, so loading the wizard never
imports this module. ``total=False``: a key that a producer sets only sometimes.
A value typed ``Any`` is a nested shape not named here yet.
"""

from __future__ import annotations

from typing import Any, TypedDict

# ---------------------------------------------------------------------------
# base


class Failure(TypedDict):
    """A check that could not complete: ``failure.error(check, message)``."""

    check: str
    message: str


# ---------------------------------------------------------------------------
# system: the recorder's database and lock


class Death(TypedDict):
    """One kernel death the recorder saw (``historydb.recent_deaths``), newest first."""

    time: float
    pid: int
    notebook: str | None
    kernel_id: str | None
    kernel_name: str | None
    cause: str  # one of diagnosis.endings.CAUSES: "oom-kill", "signal", "exit", ...
    signal: str | None
    exit_code: int | None
    detail: str | None
    rss_bytes: int | None
    limit_bytes: int | None
    usage_bytes: int | None
    cgroup: str | None
    exact: bool  # the server said how it ended (not guessed from outside)
    recorded_by: str | None
    samples: list[int]  # the kernel's memory before it died, oldest first


class RecorderStatus(TypedDict):
    """``recorder_lock.recorder_status``: whether a recorder runs, and since when."""

    running: bool
    pid: int | None
    since: float | None
    where: str | None


# ---------------------------------------------------------------------------
# probes


class KernelCgroup(TypedDict):
    """A kernel's own memory cgroup (``kernel_cgroups.of_pid``)."""

    version: int
    path: str
    limit_bytes: int | None
    limit_path: str | None
    usage_bytes: int | None
    oom_kills: int | None
    own_oom_kills: int | None
    pids_max: int | None
    pids_current: int | None
    pids_refused: int | None


class Kernel(TypedDict, total=False):
    """A kernel process (``kernels.probe``), filled in by ``servers.merge``,
    ``kernel_cgroups.annotate`` and ``collect`` (the keys after ``cmdline``)."""

    pid: int
    kernel_id: str | None
    connection_file: str | None
    kernel_name: str | None
    notebook: str | None
    notebook_source: str | None  # "connection-file", "environ" or "server"
    rss_bytes: int | None
    children: int
    started: float | None
    argv0: str
    uid: int | None
    cmdline: list[str]
    # servers.merge / collect
    execution_state: str | None
    last_activity: str | None  # ISO time, as the server gives it
    server_pid: int | None
    idle_seconds: float | None
    # kernel_cgroups.annotate
    connection_file_mtime: float | None
    cgroup: KernelCgroup | None


class KernelsResult(TypedDict, total=False):
    """``kernels.probe``: the kernels, biggest first, and what the scan met."""

    kernels: list[Kernel]
    scanned: int
    denied: int
    vanished: int
    daemons: list[str]  # userspace OOM killers seen running
    errors: list[str]


class ServerKernel(TypedDict):
    """A kernel as a server's ``/api/kernels`` lists it."""

    id: str
    name: str | None
    execution_state: str | None
    last_activity: str | None
    connections: int | None


class ServerSession(TypedDict):
    """A session as a server's ``/api/sessions`` lists it."""

    path: str | None
    kernel_id: str | None
    name: str | None
    type: str | None


class Server(TypedDict):
    """A Jupyter server found by its runtime file (``servers.probe``); never a secret."""

    pid: int | None
    file: str
    url: str | None
    alive: bool
    reachable: bool | None
    version: str | None
    root_dir: str | None
    error: str | None
    kernels: list[ServerKernel]
    sessions: list[ServerSession]


class Fallback(TypedDict):
    """``servers.fallback``: which plain servers are installed, and how to start one."""

    cocalc: bool
    installed: list[str]
    command: str | None


class ServersResult(TypedDict, total=False):
    """``servers.probe``."""

    runtime_dir: str | None
    servers: list[Server]
    fallback: Fallback | None
    unlisted: str  # the runtime dir could not be listed: servers may run, unseen
    errors: list[str]


class Kill(TypedDict, total=False):
    """An OOM kill: of the kernel log (``kernlog``: time, pid, name, rss_bytes,
    total_vm_bytes, cgroup_oom, memcg, limit_memcg (the cgroup whose limit was hit),
    group_kill) or of a userspace killer (``userspace_oom``: killer, time, signal,
    cgroup, pid, uid, name, reason, ours)."""

    time: float | None
    pid: int | None
    name: str | None
    rss_bytes: int | None
    total_vm_bytes: int | None
    cgroup_oom: bool
    memcg: str | None
    limit_memcg: str | None
    group_kill: bool
    killer: str
    signal: str | None
    cgroup: str | None
    uid: int | None
    reason: str | None
    ours: bool | None


class Memory(TypedDict, total=False):
    """``memory.probe``: the limit in force, use against it, swap, pressure, pids, kills.

    ``collect`` adds ``kernel_cgroups`` and ``oom_log_kernels``."""

    platform: str
    limit_bytes: int | None
    limit_source: str  # "host" or "cgroup vN PATH"
    used_bytes: int | None
    available_bytes: int | None
    peak_bytes: int | None
    swap_total_bytes: int | None
    swap_used_bytes: int | None
    host_total_bytes: int | None
    host_available_bytes: int | None
    cgroup: dict[str, Any] | None  # the limiting cgroup (cgroup_files.read_memory)
    oom_kills: int | None
    oom_events: int | None
    host_oom_kills: int | None
    pressure: dict[str, Any] | None
    pids: dict[str, Any] | None
    high_bytes: int | None
    high_path: str | None
    high_events: int | None
    oom_group: bool | None
    oom_group_kills: int | None
    oom_log: list[Kill]  # kills inside our scope
    oom_log_elsewhere: list[Kill]
    oom_log_status: str  # "empty", "found", "unreadable: WHY", ...
    userspace_oom: dict[str, Any] | None
    notes: list[str]
    errors: list[str]
    # collect
    kernel_cgroups: list[dict[str, Any]]  # {"path", "limit_bytes", ..., "pids": [pid]}
    oom_log_kernels: list[Kill]


class Banner(TypedDict):
    """``banner.parse``: what the pasted message said."""

    text: str
    kind: str
    signal: str | None
    code: int | None
    row: dict[str, Any] | None  # the row of the signals table it names


class Facts(TypedDict, total=False):
    """What the rules read: ``collect.gather`` plus what the command adds (banner,
    intentional, versions). ``evaluate`` hands the rules a copy with ``_found`` and the
    evidence flags added (``RuleView``)."""

    now: float
    errors: list[Failure]
    memory: Memory
    kernels: KernelsResult
    servers: ServersResult
    kernelspecs: dict[str, Any]  # {"kernelspecs": [...], "errors": [...]}
    recorder: RecorderStatus
    deaths: list[Death]
    death_counts: dict[str, int]  # cause -> deaths in the window
    banner: Banner | None
    intentional: bool | None
    versions: dict[str, str | None]


# ---------------------------------------------------------------------------
# diagnosis


class Hit(TypedDict, total=False):
    """What a rule's ``test(facts)`` returns when it fires."""

    message: str
    hint: str
    commands: list[str | None]
    evidence: list[str]
    severity: str
    signal_anchor: str


class Rule(TypedDict, total=False):
    """A row of ``rules.RULES`` (its docstring says what each field does)."""

    id: str
    severity: str  # "problem", "warning" or "info"
    check: str
    cause: str | None
    when: str
    doc_label: str
    evidence: str | None  # "oom", "memory" or None
    reads: tuple[str, ...]
    test: Any  # Callable[[facts view], Optional[Hit]]


class Finding(TypedDict, total=False):
    """A finding: what the report shows and the JSON lists (without ``cause``)."""

    id: str
    severity: str
    check: str
    message: str
    hint: str
    commands: list[str]
    evidence: list[str]
    doc_label: str
    url: str
    cause: str | None
    signal_label: str
    signal_url: str


# ---------------------------------------------------------------------------
# report


class Summary(TypedDict):
    problems: int
    warnings: int
    exit_code: int


class Report(TypedDict):
    """``jsonout.report``: the machine-readable report (schema ``kernel-wizard/N``)."""

    schema: str
    version: str
    time: str
    docs_url: str | None
    banner: dict[str, Any] | None  # {"text", "kind", "signal", "code"}
    intentional: bool | None
    memory: Memory | dict[str, Any]
    kernels: list[Kernel]
    servers: list[Server]
    fallback: Fallback | None
    kernelspecs: list[dict[str, Any]]
    deaths: list[Death]
    recorder: RecorderStatus | None
    findings: list[dict[str, Any]]  # Finding without "cause"
    errors: list[Failure]
    versions: dict[str, str | None] | None
    summary: Summary
