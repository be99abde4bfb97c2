"""Halting kernels: pick them, list them, shut them down, count the memory that came back.

A kernel that a reachable Jupyter server owns is shut down through that server's
API (``DELETE /api/kernels/<id>``), so the notebooks open on it see it go; the
token is read from the server's runtime file at that moment and only sent to a
loopback address. Any other kernel gets SIGTERM on its process tree, then SIGKILL
after a grace period. Only kernels of the current user are touched, with their
own descendants, and a pid is signalled only while it is still the process the
kernels probe saw (same start time), so a reused pid is never hit.

``halt_kernels(kernels, servers, ctx, ...)`` does it all on a terminal (list, ask,
halt, report); the pieces (``gather``, ``select``, ``plan``, ``halt``) are for the
command line's JSON mode and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from wizard.engines.halt_select import display_name, my_uid, server_of
from wizard.system import processes
from wizard.system.jupyter_procs import looks_like_server, server_parent

if TYPE_CHECKING:
    from wizard.base.shapes import Kernel, Server, ServersResult
    from wizard.system.processes import Procs
    from wizard.system.sysroot import SysRoot

# A plan's entry and a result: plain dicts (their keys are set in plan() and _result()).
Entry = dict[str, Any]
# {pid: (start time, rss)} of a kernel's process tree
Tree = dict[int, tuple[float, int]]

GRACE = 5.0  # seconds between SIGTERM and SIGKILL
SERVER_WAIT = 3.0  # after a server said the kernel is shut down: time for its processes to go
KILL_WAIT = 2.0  # after SIGKILL
API_TIMEOUT = 30.0  # a server waits up to ~5 s for a kernel to stop before it kills it
START_SLACK = 0.02  # seconds: start times compare equal within this (one clock tick is 0.01)
POLL = 0.05
MIN_ID_PREFIX = 4
_BODY_MAX = 64 * 1024


# ---------------------------------------------------------------------------
# The plan: how each kernel will be halted, or why it cannot be


def plan(
    chosen: Iterable[Kernel | tuple[Kernel, str]],
    servers_result: ServersResult | None,
    procs: Procs | None = None,
) -> list[Entry]:
    """One entry (a plain dict) per kernel: what will be done, or the problem that stops it.

    ``chosen``: kernels, or ``(kernel, reason)`` pairs as ``select`` returns them.
    """
    procs = procs or processes.processes()
    me = my_uid()
    entries: list[Entry] = []
    for item in chosen:
        k, reason = item if isinstance(item, tuple) else (item, "named")
        server = server_of(k, servers_result)
        e: Entry = {
            "pid": k.get("pid"),
            "kernel_id": k.get("kernel_id"),
            "notebook": k.get("notebook"),
            "name": display_name(k, servers_result),
            "rss_bytes": k.get("rss_bytes"),
            "execution_state": k.get("execution_state"),
            "idle_seconds": k.get("idle_seconds"),
            "reason": reason,
            "method": "server" if server else "signal",
            "server_pid": server.get("pid") if server else None,
            "server_url": server.get("url") if server else None,
            "started": k.get("started"),
            "problem": None,
        }
        if me is not None and k.get("uid") is not None and k["uid"] != me:
            e["problem"] = f"it belongs to another user (uid {k['uid']}): not touched"
        elif server is not None and not server.get("reachable"):
            e["problem"] = f"its Jupyter server (pid {server.get('pid')}) does not answer"
        elif server is None:
            parent = server_parent(procs, k.get("pid"))
            if parent is not None:
                e["problem"] = (
                    f"it was started by the Jupyter server pid {parent}, which could not be "
                    "asked to shut it down (and restarts a kernel that is killed): use "
                    "Kernel > Shut down kernel in the notebook, or stop that server"
                )
        entries.append(e)
    return entries


# ---------------------------------------------------------------------------
# Processes: raw /proc on Linux, psutil elsewhere


# ---------------------------------------------------------------------------
# Doing it


def _same(procs: Procs, pid: int, start: float | None, me: int | None) -> bool:
    """Whether ``pid`` is still the live process that started at ``start``."""
    info = procs.info(pid)
    if info is None or info["zombie"] or info["start"] is None or start is None:
        return False
    if me is not None and info["uid"] is not None and info["uid"] != me:
        return False
    return bool(abs(info["start"] - start) <= START_SLACK)


def _gone(procs: Procs, pid: int, start: float) -> bool:
    info = procs.info(pid)
    return bool(
        info is None
        or info["zombie"]
        or (info["start"] is not None and abs(info["start"] - start) > START_SLACK)
    )


def snapshot(
    procs: Procs, pid: int, started: float | None, me: int | None
) -> tuple[Tree | None, str | None]:
    """``({pid: (start, rss)}, None)`` for the kernel and its descendants, or ``(None, why)``.

    ``why`` is "gone" when the kernel has ended (its pid may now be another process's).
    """
    info = procs.info(pid)
    if info is None or info["zombie"]:
        return None, "gone"
    if started is None or info["start"] is None:
        return None, (
            "its start time cannot be read, so the pid cannot be checked against reuse"
            " (on this system the wizard needs psutil: pip install psutil)"
            if isinstance(procs, processes.Unknown)
            else "its start time cannot be read, so the pid cannot be checked against reuse"
        )
    if abs(info["start"] - started) > START_SLACK:
        return None, "gone"
    if me is not None and info["uid"] is not None and info["uid"] != me:
        return None, f"it belongs to another user (uid {info['uid']})"
    tree: Tree = {pid: (info["start"], procs.rss(pid))}
    tree.update(_below(procs, pid, me))
    return tree, None


def _below(procs: Procs, pid: int, me: int | None) -> Tree:
    """``{pid: (start, rss)}`` of the live descendants of ``pid`` that are ours to stop.

    A Jupyter server started from a notebook is not the kernel's to take along,
    nor is anything below it, nor another user's process.
    """
    below = procs.descendants(pid)
    for d in [d for d in below if looks_like_server(procs.cmdline(d) or [])]:
        below -= {d} | procs.descendants(d)
    out: Tree = {}
    for d in below:
        di = procs.info(d)
        if di is None or di["zombie"] or di["start"] is None:
            continue
        if me is not None and di["uid"] is not None and di["uid"] != me:
            continue
        out[d] = (di["start"], procs.rss(d))
    return out


def _result(
    e: Entry,
    halted: bool,
    detail: str | None = None,
    error: str | None = None,
    freed: int | None = None,
    signals: Sequence[str] = (),
) -> Entry:
    return {
        "pid": e["pid"],
        "kernel_id": e["kernel_id"],
        "notebook": e["notebook"],
        "name": e["name"],
        "method": e["method"],
        "halted": halted,
        "freed_bytes": freed,
        "signals": list(signals),
        "detail": detail,
        "error": error,
    }


def _wait_gone(procs: Procs, tree: Tree, deadline: float) -> list[int]:
    while True:
        left = [p for p, (start, _) in tree.items() if not _gone(procs, p, start)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL)


def _freed(procs: Procs, tree: Tree) -> int:
    return sum(rss for p, (start, rss) in tree.items() if _gone(procs, p, start))


def halt(
    entries: Sequence[Entry],
    servers_result: ServersResult | None,
    grace: float = GRACE,
    root: SysRoot | None = None,
    procs: Procs | None = None,
) -> list[Entry]:
    """Halt every entry of ``plan``; one result dict per entry, in the same order.

    SIGTERM goes to the kernels no server owns first, the servers are asked next,
    and what is still running once the grace period is over gets SIGKILL.
    """
    from wizard.system.sysroot import SysRoot

    root = root or SysRoot()
    procs = procs or processes.processes()
    me = my_uid()
    results: dict[int, Entry] = {}
    termed: list[tuple[Entry, Tree]] = []
    for e in entries:
        if e["problem"]:
            results[e["pid"]] = _result(e, False, error=e["problem"])
        elif e["method"] == "signal":
            tree, why = snapshot(procs, e["pid"], e["started"], me)
            if tree is None:
                results[e["pid"]] = _gone_or_not(e, why)
                continue
            sent, err = _send(procs, tree, "SIGTERM", me)
            if err and not sent:
                results[e["pid"]] = _result(e, False, error=err)
                continue
            termed.append((e, tree))
    deadline = time.monotonic() + grace
    for e in entries:
        if e["method"] == "server" and not e["problem"]:
            results[e["pid"]] = _via_server(e, servers_result, procs, me, root)
    for e, tree in termed:
        left = _wait_gone(procs, tree, deadline)
        signals = ["SIGTERM"]
        if left:
            # a process that ignores SIGTERM: take what it started since, then SIGKILL
            alive = {p: tree[p] for p in left}
            for p in left:
                for d, start_rss in _below(procs, p, me).items():
                    tree.setdefault(d, start_rss)
                    alive.setdefault(d, tree[d])
            _send(procs, alive, "SIGKILL", me)
            signals.append("SIGKILL")
            left = _wait_gone(procs, tree, time.monotonic() + KILL_WAIT)
        freed = _freed(procs, tree)
        if e["pid"] in left:
            results[e["pid"]] = _result(
                e, False, error="still running after SIGKILL", freed=freed, signals=signals
            )
            continue
        if len(signals) == 1:
            detail = "ended on SIGTERM"
        else:
            detail = f"still running {grace:g} s after SIGTERM: killed with SIGKILL"
        if left:
            detail += f"; {len(left)} process(es) it started are still running"
        results[e["pid"]] = _result(e, True, detail=detail, freed=freed, signals=signals)
    return [results[e["pid"]] for e in entries]


def _gone_or_not(e: Entry, why: str | None) -> Entry:
    if why == "gone":
        return _result(e, True, detail="it had already ended", freed=0)
    return _result(e, False, error=why)


def _send(procs: Procs, tree: Tree, name: str, me: int | None) -> tuple[int, str | None]:
    """Send signal ``name`` to each pid of ``tree`` still being that process: (sent, error)."""
    sent = 0
    err: str | None = None
    for pid, (start, _) in tree.items():
        if not _same(procs, pid, start, me):  # right before the signal: no reused pid
            continue
        try:
            procs.signal(pid, name)
            sent += 1
        except ProcessLookupError:
            pass
        except PermissionError:
            err = err or f"not allowed to send {name} to pid {pid}"
        except OSError as x:
            err = err or f"cannot send {name} to pid {pid}: {x.strerror or x}"
    return sent, err


def _via_server(
    e: Entry, servers_result: ServersResult | None, procs: Procs, me: int | None, root: SysRoot
) -> Entry:
    server: Server | None = None
    for s in (servers_result or {}).get("servers") or []:
        if s.get("pid") == e["server_pid"]:
            server = s
    tree, _ = snapshot(procs, e["pid"], e["started"], me)
    ok, note = shutdown_via_server(server, e["kernel_id"], root)
    where = f"the Jupyter server at {e['server_url']}" if e["server_url"] else "its server"
    if not ok:
        return _result(e, False, error=note)
    freed: int | None = None
    left: list[int] = []
    if tree:
        left = _wait_gone(procs, tree, time.monotonic() + SERVER_WAIT)
        freed = _freed(procs, tree)
    detail = note or f"shut down by {where}"
    if e["pid"] in left:
        detail += "; its process is still running"
    elif left:
        detail += f"; {len(left)} process(es) it started are still running"
    return _result(e, True, detail=detail, freed=freed)


def shutdown_via_server(
    server: Server | None, kernel_id: str | None, root: SysRoot
) -> tuple[bool, str | None]:
    """``DELETE /api/kernels/<id>`` on ``server``: ``(done, note_or_error)``.

    The token comes from the server's runtime file, read now, and goes only to a
    loopback address or unix socket. Nothing returned contains it.
    """
    import http.client
    from urllib.parse import quote

    from wizard.probes import servers

    if server is None or not server.get("file"):
        return False, "its Jupyter server is no longer known"
    if not kernel_id:
        return False, "its kernel id is unknown, so the server cannot be asked"
    info, err = servers.read_info(root, server["file"])
    if err:
        return False, err
    secrets = [s for s in (info.get("token"), info.get("password")) if isinstance(s, str) and s]
    if info.get("pid") not in (None, server.get("pid")):
        return False, f"the server file {server['file']} now belongs to another server"
    targets = servers.request_targets(info, server.get("url"))
    if targets is None:
        return False, (
            "its server listens on another host, and its token is only sent to this "
            "machine's loopback address: shut the kernel down from the notebook"
        )
    if not targets:
        return False, "the server file names no port or socket"
    token = info.get("token") if isinstance(info.get("token"), str) else ""
    base = info.get("base_url") if isinstance(info.get("base_url"), str) else "/"
    base = base if base.endswith("/") else base + "/"
    path = f"{base}api/kernels/{quote(kernel_id, safe='')}"
    headers = {"Authorization": f"token {token}"} if token else {}
    errors: list[str] = []
    for host, port in targets:
        where = port if host == "unix" else f"{host}:{port}"
        conn = servers.connection(host, port, bool(info.get("secure")), API_TIMEOUT)
        try:
            conn.request("DELETE", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read(_BODY_MAX)
        except ConnectionRefusedError:
            errors.append(f"connection refused on {where}")
            continue
        except (OSError, http.client.HTTPException) as x:
            text = getattr(x, "strerror", None) or str(x) or type(x).__name__
            errors.append(f"no answer from {where}: {text}")
            continue
        finally:
            conn.close()
        if resp.status in (200, 202, 204):
            return True, None
        if resp.status == 404:
            return True, "the server no longer had it"
        if resp.status in (401, 403):
            return False, f"the server refused its own token (HTTP {resp.status})"
        return False, servers.scrub(
            f"the server answered HTTP {resp.status}{_message(body)}", secrets
        )
    return False, servers.scrub("; ".join(errors) or "the server could not be reached", secrets)


def _message(body: bytes) -> str:
    import json

    try:
        msg = json.loads(body.decode("utf-8")).get("message")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return ""
    if not isinstance(msg, str) or not msg.strip():
        return ""
    msg = " ".join(msg.split())
    return f": {msg[:200]}"
