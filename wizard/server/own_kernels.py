"""This server's own kernels, read in process from its kernel manager, and halting them.

Nothing here discovers other servers: the kernels are ``serverapp.kernel_manager``'s
(their ids, ``execution_state``, ``last_activity``, the provisioner's process), their
notebooks the server's own sessions (paths relative to the server's root), and a
kernel is halted by ``kernel_manager.shutdown_kernel``, as the server's own
``DELETE /api/kernels/ID`` does.

A kernel is offered for halting only when it is idle and its last activity is at least
``threshold`` seconds old; a kernel that is starting, restarting, busy or was active
more recently is left running, with the reason.
"""

import datetime
import time

from wizard.server.shapes import HaltAnswer, HaltPlan, OwnKernel
from wizard.system import procfs
from wizard.system.sysroot import SysRoot

HALTABLE_STATES = ("idle",)


def _tree_rss(pid, root=None):
    """Resident bytes of ``pid`` and its descendants (None when unreadable)."""
    if not pid:
        return None
    proc = procfs.proc_dir(root or SysRoot())
    page = procfs.page_size()
    first = procfs.statm_rss(proc, pid, page)
    if first is None:
        return None
    total = first
    for child in procfs.ProcTree(proc).descendants(pid):
        total += procfs.statm_rss(proc, child, page) or 0
    return total


def kernel_pid(kernel):
    """The pid of a kernel manager's process, or None (a remote or gateway kernel)."""
    prov = getattr(kernel, "provisioner", None)
    proc = getattr(prov, "process", None)
    pid = getattr(proc, "pid", None) or getattr(prov, "pid", None)
    return pid if isinstance(pid, int) and pid > 0 else None


def _idle_seconds(kernel, now):
    last = getattr(kernel, "last_activity", None)
    if not isinstance(last, datetime.datetime):
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=datetime.timezone.utc)
    return max(now - last.timestamp(), 0.0)


async def sessions_by_kernel(serverapp):
    """``{kernel id: notebook path relative to the server root}`` from its own sessions."""
    sm = getattr(serverapp, "session_manager", None)
    if sm is None:
        return {}
    try:
        found = await sm.list_sessions()
    except Exception:  # a session store the server cannot read: paths stay unknown
        return {}
    out = {}
    for s in found:
        kid = (s.get("kernel") or {}).get("id")
        if kid:
            out[kid] = s.get("path") or s.get("name")
    return out


async def snapshot(serverapp, now=None, measure=True):
    """``[OwnKernel]`` of every kernel this server's kernel manager holds."""
    km = serverapp.kernel_manager
    now = time.time() if now is None else now
    paths = await sessions_by_kernel(serverapp)
    out = []
    for kid in list(km.list_kernel_ids()):
        try:
            kernel = km.get_kernel(kid)
        except KeyError:
            continue  # shut down meanwhile
        pid = kernel_pid(kernel)
        out.append(
            OwnKernel(
                kernel_id=kid,
                path=paths.get(kid),
                kernel_name=getattr(kernel, "kernel_name", None),
                execution_state=getattr(kernel, "execution_state", None) or "unknown",
                idle_seconds=_idle_seconds(kernel, now),
                rss_bytes=_tree_rss(pid) if measure else None,
                local=pid is not None,
            )
        )
    return out


def why_left(k, threshold):
    """Why a kernel stays running, or None when it may be halted."""
    state = k["execution_state"]
    if state == "busy":
        return "busy running code"
    if state in ("starting", "restarting", "autorestarting"):
        return f"{state}"
    if state not in HALTABLE_STATES:
        return f"its state is {state!r}"
    idle = k["idle_seconds"]
    if idle is None:
        return "its last activity is unknown"
    if idle < threshold:
        return f"active {idle:.0f} s ago (kernels idle under {threshold:g} s are kept)"
    return None


def plan(kernels, threshold, spare=()):
    """``HaltPlan``: the kernels that would be halted and those left running, with why."""
    halt, left = [], []
    for k in kernels:
        reason = "the notebook you are looking at" if k["kernel_id"] in spare else None
        reason = reason or why_left(k, threshold)
        if reason:
            left.append(dict(k, reason=reason))
        else:
            halt.append(dict(k))
    freed = sum(k["rss_bytes"] or 0 for k in halt)
    return HaltPlan(threshold=threshold, halt=halt, left=left, freed_bytes=freed)


async def halt(serverapp, confirmed, threshold, spare=()):
    """Halt the ``confirmed`` kernel ids that are still in the plan; ``HaltAnswer``."""
    km = serverapp.kernel_manager
    now_plan = plan(await snapshot(serverapp), threshold, spare)
    wanted = set(confirmed)
    halted, failed = [], []
    for k in now_plan["halt"]:
        if k["kernel_id"] not in wanted:
            continue
        try:
            await km.shutdown_kernel(k["kernel_id"])
            halted.append(k)
        except Exception as exc:  # one kernel's failure is its own line
            failed.append(dict(k, reason=f"{type(exc).__name__}: {exc}"[:200]))
    planned = {k["kernel_id"] for k in now_plan["halt"]}
    changed = [
        dict(k)
        for k in now_plan["left"]
        if k["kernel_id"] in wanted and k["kernel_id"] not in planned
    ]
    gone = sorted(wanted - planned - {k["kernel_id"] for k in now_plan["left"]})
    return HaltAnswer(
        halted=halted,
        failed=failed,
        kept=changed,
        gone=gone,
        freed_bytes=sum(k["rss_bytes"] or 0 for k in halted),
    )
