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

import os
import time

from wizard.base import exitcodes, fmt
from wizard.system import processes
from wizard.system.jupyter_procs import looks_like_server, server_parent

GRACE = 5.0  # seconds between SIGTERM and SIGKILL
SERVER_WAIT = 3.0  # after a server said the kernel is shut down: time for its processes to go
KILL_WAIT = 2.0  # after SIGKILL
API_TIMEOUT = 30.0  # a server waits up to ~5 s for a kernel to stop before it kills it
START_SLACK = 0.02  # seconds: start times compare equal within this (one clock tick is 0.01)
POLL = 0.05
MIN_ID_PREFIX = 4
_BODY_MAX = 64 * 1024


class TargetError(Exception):
    """A target that names no kernel, or more than one: a usage error (exit 2)."""


def my_uid():
    return os.geteuid() if hasattr(os, "geteuid") else None


# ---------------------------------------------------------------------------
# Facts


def gather(root=None, server_timeout=2.0):
    """This user's kernels, merged with what the servers know.

    ``{"now", "kernels": [kernel...], "servers": servers-probe result, "errors": [str]}``;
    each kernel also has ``execution_state``, ``last_activity``, ``server_pid`` and
    ``idle_seconds`` (None when no server reports its activity).
    """
    from wizard.probes import kernels, servers
    from wizard.probes.collect import _guard
    from wizard.system.sysroot import SysRoot

    root = root or SysRoot()
    errors = []
    now = time.time()
    kres = _guard("kernels", errors, kernels.probe, root, uid=my_uid()) or {"kernels": []}
    sres = _guard("servers", errors, servers.probe, root, timeout_total=server_timeout) or {
        "servers": []
    }
    if kres.get("kernels") and sres.get("servers"):
        _guard("servers", errors, servers.merge, kres, sres)
    for name, res in (("kernels", kres), ("servers", sres)):
        errors.extend(f"{name}: {line}" for line in res.get("errors") or [])
    for s in sres.get("servers") or []:
        if s.get("alive") and not s.get("reachable") and s.get("error"):
            errors.append(
                f"servers: the Jupyter server pid {s.get('pid')} ({s.get('url')}) could not be "
                f"asked: {s['error']}"
            )
    ks = kres.get("kernels") or []
    for k in ks:
        for key in ("execution_state", "last_activity", "server_pid"):
            k.setdefault(key, None)
        if k.get("idle_seconds") is None:
            k["idle_seconds"] = idle_seconds(k, now)
    return {"now": now, "kernels": ks, "servers": sres, "errors": errors}


def idle_seconds(k, now):
    """Seconds since the server last saw the kernel active; None if busy or unknown."""
    from wizard.probes.collect import parse_iso

    if k.get("execution_state") == "busy" or not k.get("last_activity"):
        return None
    stamp = parse_iso(k["last_activity"])
    return None if stamp is None else max(0.0, now - stamp)


def server_of(k, servers_result):
    pid = k.get("server_pid")
    if pid is None:
        return None
    for s in (servers_result or {}).get("servers") or []:
        if s.get("pid") == pid:
            return s
    return None


# ---------------------------------------------------------------------------
# Which kernels a target names


def _norm(p):
    return os.path.normpath(p)


def notebook_names(k, servers_result):
    """Every spelling of the kernel's notebook: as recorded, absolute, relative to the root."""
    server = server_of(k, servers_result)
    root = server.get("root_dir") if server else None
    paths = [k["notebook"]] if k.get("notebook") else []
    if server:
        for sess in server.get("sessions") or []:
            if sess.get("kernel_id") == k.get("kernel_id") and sess.get("path"):
                paths.append(sess["path"])
    names = set()
    for p in paths:
        names.add(p)
        names.add(_norm(p))
        if os.path.isabs(p):
            if root:
                rel = _relative(p, root)
                if rel:
                    names.add(rel)
        elif root:
            names.add(_norm(os.path.join(root, p)))
    for n in list(names):
        if os.path.isabs(n):
            names.add(os.path.realpath(n))
    return names


def _relative(path, root):
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return None
    return None if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def display_name(k, servers_result=None):
    """The notebook as the user knows it: relative to its server's root, ~ for home."""
    nb = k.get("notebook")
    if nb:
        server = server_of(k, servers_result)
        if os.path.isabs(nb) and server and server.get("root_dir"):
            rel = _relative(nb, server["root_dir"])
            if rel:
                return rel
        home = os.path.expanduser("~")
        if home not in ("~", "/") and nb.startswith(home + os.sep):
            return "~" + nb[len(home) :]
        return nb
    if k.get("kernel_id"):
        return f"(no notebook) kernel {k['kernel_id'][:8]}"
    return f"(no notebook) pid {k.get('pid')}"


def resolve(target, kernels, servers_result):
    """The kernels ``target`` names: a pid, a kernel id or unique id prefix, a notebook.

    A notebook matches by its exact path (also relative to the current directory),
    by its path relative to its server's root, or by its base name when only one
    kernel's notebook has that name. Raises TargetError for none or an ambiguity.
    """
    t = target.strip()
    if not t:
        raise TargetError("an empty target names no kernel")
    if t.isdigit():
        hit = [k for k in kernels if k.get("pid") == int(t)]
        if hit:
            return hit
    hit = [k for k in kernels if k.get("kernel_id") == t]
    if hit:
        return hit
    forms = {t, _norm(t)}
    try:
        absolute = os.path.abspath(t)
        forms.update((absolute, os.path.realpath(absolute)))
    except (OSError, ValueError):
        pass
    names = {k["pid"]: notebook_names(k, servers_result) for k in kernels}
    hit = [k for k in kernels if forms & names[k["pid"]]]
    if hit:
        return hit
    if "/" not in t and os.sep not in t:
        hit = [k for k in kernels if t in {os.path.basename(n) for n in names[k["pid"]]}]
        if len(hit) == 1:
            return hit
        if hit:
            raise TargetError(_ambiguous(t, hit, "notebooks", servers_result))
    # a unique start of a kernel id; digits alone stay a pid, so a mistyped pid halts nothing
    if len(t) >= MIN_ID_PREFIX and not t.isdigit():
        hit = [k for k in kernels if k.get("kernel_id") and k["kernel_id"].startswith(t)]
        if len(hit) == 1:
            return hit
        if hit:
            raise TargetError(_ambiguous(t, hit, "kernel ids", servers_result))
    if t.isdigit():
        raise TargetError(f"no kernel of yours has pid {t} (halt stops kernels, nothing else)")
    raise TargetError(
        f"no running kernel of yours matches {t!r} (a notebook path, kernel id or pid; "
        "`python -m wizard` lists the kernels)"
    )


def _ambiguous(t, hits, what, servers_result):
    listed = ", ".join(
        f"{k.get('notebook') or display_name(k, servers_result)} (pid {k.get('pid')})" for k in hits
    )
    return (
        f"{t!r} matches the {what} of {len(hits)} kernels: {listed}; give the full path, "
        "the kernel id or the pid"
    )


def select(kernels, servers_result, targets=(), idle=None, all_except=(), now=None):
    """Pick the kernels to halt.

    ``targets`` (each resolved with ``resolve``), plus, when ``idle`` (seconds) or
    ``all_except`` is given, every other kernel that is idle at least that long
    (a busy kernel never is; a kernel no server knows cannot be checked and is left
    out) and not named by ``all_except``. ``all_except`` always wins. Returns
    ``{"chosen": [(kernel, reason)], "skipped": [{"pid", "notebook", "reason"}]}``
    (chosen biggest first). Raises TargetError.
    """
    now = time.time() if now is None else now
    chosen = {}
    for t in targets:
        for k in resolve(t, kernels, servers_result):
            chosen[k["pid"]] = (k, "named")
    spared = set()
    for t in all_except:
        spared.update(k["pid"] for k in resolve(t, kernels, servers_result))
    skipped = []
    if idle is not None or all_except:
        for k in kernels:
            if k["pid"] in chosen or k["pid"] in spared:
                continue
            reason = "all but the spared"
            if idle is not None:
                if k.get("execution_state") == "busy":
                    skipped.append(_skip(k, servers_result, "busy", "busy running code"))
                    continue
                secs = k.get("idle_seconds")
                if secs is None:
                    secs = idle_seconds(k, now)
                if secs is None:
                    skipped.append(_skip(k, servers_result, "unknown", UNKNOWN_IDLE))
                    continue
                if secs < idle:
                    continue
                reason = f"idle {fmt.duration(secs)}"
            chosen[k["pid"]] = (k, reason)
    for k in kernels:
        if k["pid"] in spared:
            chosen.pop(k["pid"], None)
            skipped.append(_skip(k, servers_result, "spared", "spared by --all-except"))
    picked = sorted(chosen.values(), key=lambda kr: -(kr[0].get("rss_bytes") or 0))
    return {"chosen": picked, "skipped": skipped}


UNKNOWN_IDLE = "no Jupyter server reports its activity, so its idle time is unknown"


def _skip(k, servers_result, kind, reason):
    return {
        "pid": k.get("pid"),
        "notebook": display_name(k, servers_result),
        "kind": kind,
        "reason": reason,
    }


# ---------------------------------------------------------------------------
# The plan: how each kernel will be halted, or why it cannot be


def plan(chosen, servers_result, procs=None):
    """One entry (a plain dict) per kernel: what will be done, or the problem that stops it.

    ``chosen``: kernels, or ``(kernel, reason)`` pairs as ``select`` returns them.
    """
    procs = procs or processes.processes()
    me = my_uid()
    entries = []
    for item in chosen:
        k, reason = item if isinstance(item, tuple) else (item, "named")
        server = server_of(k, servers_result)
        e = {
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


def _same(procs, pid, start, me):
    """Whether ``pid`` is still the live process that started at ``start``."""
    info = procs.info(pid)
    if info is None or info["zombie"] or info["start"] is None or start is None:
        return False
    if me is not None and info["uid"] is not None and info["uid"] != me:
        return False
    return abs(info["start"] - start) <= START_SLACK


def _gone(procs, pid, start):
    info = procs.info(pid)
    return (
        info is None
        or info["zombie"]
        or (info["start"] is not None and abs(info["start"] - start) > START_SLACK)
    )


def snapshot(procs, pid, started, me):
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
    tree = {pid: (info["start"], procs.rss(pid))}
    tree.update(_below(procs, pid, me))
    return tree, None


def _below(procs, pid, me):
    """``{pid: (start, rss)}`` of the live descendants of ``pid`` that are ours to stop.

    A Jupyter server started from a notebook is not the kernel's to take along,
    nor is anything below it, nor another user's process.
    """
    below = procs.descendants(pid)
    for d in [d for d in below if looks_like_server(procs.cmdline(d) or [])]:
        below -= {d} | procs.descendants(d)
    out = {}
    for d in below:
        di = procs.info(d)
        if di is None or di["zombie"] or di["start"] is None:
            continue
        if me is not None and di["uid"] is not None and di["uid"] != me:
            continue
        out[d] = (di["start"], procs.rss(d))
    return out


def _result(e, halted, detail=None, error=None, freed=None, signals=()):
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


def _wait_gone(procs, tree, deadline):
    while True:
        left = [p for p, (start, _) in tree.items() if not _gone(procs, p, start)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL)


def _freed(procs, tree):
    return sum(rss for p, (start, rss) in tree.items() if _gone(procs, p, start))


def halt(entries, servers_result, grace=GRACE, root=None, procs=None):
    """Halt every entry of ``plan``; one result dict per entry, in the same order.

    SIGTERM goes to the kernels no server owns first, the servers are asked next,
    and what is still running once the grace period is over gets SIGKILL.
    """
    from wizard.system.sysroot import SysRoot

    root = root or SysRoot()
    procs = procs or processes.processes()
    me = my_uid()
    results = {}
    termed = []  # (entry, tree)
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


def _gone_or_not(e, why):
    if why == "gone":
        return _result(e, True, detail="it had already ended", freed=0)
    return _result(e, False, error=why)


def _send(procs, tree, name, me):
    """Send signal ``name`` to each pid of ``tree`` still being that process: (sent, error)."""
    sent, err = 0, None
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


def _via_server(e, servers_result, procs, me, root):
    server = None
    for s in (servers_result or {}).get("servers") or []:
        if s.get("pid") == e["server_pid"]:
            server = s
    tree, _ = snapshot(procs, e["pid"], e["started"], me)
    ok, note = shutdown_via_server(server, e["kernel_id"], root)
    where = f"the Jupyter server at {e['server_url']}" if e["server_url"] else "its server"
    if not ok:
        return _result(e, False, error=note)
    freed = None
    left = []
    if tree:
        left = _wait_gone(procs, tree, time.monotonic() + SERVER_WAIT)
        freed = _freed(procs, tree)
    detail = note or f"shut down by {where}"
    if e["pid"] in left:
        detail += "; its process is still running"
    elif left:
        detail += f"; {len(left)} process(es) it started are still running"
    return _result(e, True, detail=detail, freed=freed)


def shutdown_via_server(server, kernel_id, root):
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
    errors = []
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


def _message(body):
    import json

    try:
        msg = json.loads(body.decode("utf-8")).get("message")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return ""
    if not isinstance(msg, str) or not msg.strip():
        return ""
    msg = " ".join(msg.split())
    return f": {msg[:200]}"


# ---------------------------------------------------------------------------
# On a terminal


def idle_text(e):
    if e.get("execution_state") == "busy":
        return "busy"
    if e.get("idle_seconds") is not None:
        return fmt.duration(e["idle_seconds"])
    return "?" if e.get("server_pid") is None else "-"


def write_plan(p, entries, title):
    from wizard.report.text import table

    total = sum(e.get("rss_bytes") or 0 for e in entries if not e["problem"])
    p.line(p.bold(f"{title} {len(entries)} kernel(s), holding {fmt.size(total)}:"))
    rows = [
        [
            str(e["pid"]),
            fmt.size(e.get("rss_bytes")),
            idle_text(e),
            {"server": "server", "signal": "signal"}[e["method"]] if not e["problem"] else "-",
            e["name"],
        ]
        for e in entries
    ]
    table(p, ["PID", "MEMORY", "IDLE", "HOW", "NOTEBOOK"], rows, indent="  ")
    for e in entries:
        if e["problem"]:
            p.line(f"  {p.mark('warning')} pid {e['pid']} cannot be halted: {e['problem']}")


def write_skipped(p, skipped, errors=(), most=4):
    """What is left running and why; kernels of unknown idle time in one line."""
    unknown = [s for s in skipped if s.get("kind") == "unknown"]
    for s in skipped:
        if s.get("kind") != "unknown":
            p.line(
                f"  {p.mark('info')} left running: {s['notebook']} (pid {s['pid']}): {s['reason']}"
            )
    if unknown:
        names = ", ".join(f"{s['notebook']} (pid {s['pid']})" for s in unknown[:most])
        if len(unknown) > most:
            names += f" and {len(unknown) - most} more"
        p.line(
            f"  {p.mark('info')} left running: {len(unknown)} kernel(s) whose idle time is "
            f"unknown, as no Jupyter server reports on them (name one to halt it): {names}"
        )
    for line in list(errors)[:most]:
        p.line(f"  {p.mark('error')} {line}")
    if len(errors) > most:
        p.line(f"  {p.mark('error')} ... and {len(errors) - most} more (--json lists them all)")


def write_results(p, results, grace=GRACE):
    for r in results:
        if r["halted"]:
            freed = "" if r["freed_bytes"] is None else f", {fmt.size(r['freed_bytes'])} freed"
            p.line(f"  {p.mark('ok')} {r['name']} (pid {r['pid']}): {r['detail']}{freed}")
        else:
            p.line(f"  {p.mark('problem')} {r['name']} (pid {r['pid']}): {r['error']}")
    p.line(closing_line(results))


def closing_line(results):
    done = [r for r in results if r["halted"]]
    freed = sum(r["freed_bytes"] or 0 for r in done)
    text = f"Halted {len(done)} of {len(results)} kernel(s); {fmt.size(freed)} freed."
    failed = len(results) - len(done)
    if failed:
        text += f" {failed} could not be halted."
    return text


def ask_terminal(ctx):
    """A yes/no question on the context's terminal (end of input: no)."""

    def ask(question):
        ctx.stdout.write(question + " [y/N] ")
        ctx.stdout.flush()
        line = ctx.stdin.readline()
        if not line:
            ctx.stdout.write("\n")
        return line.strip().lower() in ("y", "yes")

    return ask


NO_TERMINAL = (
    "Nothing was halted: there is no terminal to confirm on. Add --yes to halt these "
    "kernels (--dry-run only lists them)."
)


def halt_kernels(
    kernels,
    servers,
    ctx,
    grace=GRACE,
    yes=False,
    dry_run=False,
    ask=None,
    reasons=None,
    skipped=(),
    errors=(),
):
    """List ``kernels``, ask, halt them, say what was freed. For the terminal.

    ``kernels``: kernel dicts as the kernels probe gives them, merged with
    ``servers`` (the servers probe result) by ``servers.merge``. ``ask(question) ->
    bool`` confirms (default: y/N on ``ctx.stdin`` when it is a terminal; without a
    terminal and without ``yes`` nothing is halted). ``reasons``: optional
    ``{pid: reason}``; ``skipped`` (as ``select`` gives) and ``errors`` (lines) are
    shown under the list. Returns ``{"entries", "results", "confirmed", "freed_bytes",
    "exit_code"}``; exit_code 0 when all were halted (or there was nothing to halt),
    1 when something was not (including "not confirmed").
    """
    from wizard.report.text import Printer

    p = Printer(ctx)
    reasons = reasons or {}
    entries = plan([(k, reasons.get(k.get("pid"), "named")) for k in kernels], servers)
    report = {"entries": entries, "results": [], "confirmed": None, "freed_bytes": 0}
    if not entries:
        write_skipped(p, skipped, errors)
        p.line("Nothing to halt.")
        report["exit_code"] = exitcodes.OK
        return report
    write_plan(p, entries, "Would halt" if dry_run else "Will halt")
    write_skipped(p, skipped, errors)
    if dry_run:
        report["exit_code"] = exitcodes.OK
        return report
    if not any(not e["problem"] for e in entries):
        p.line()
        results = halt(entries, servers, grace)
        write_results(p, results, grace)
        report.update(results=results, exit_code=exitcodes.PROBLEM)
        return report
    if not yes:
        if ask is None and ctx.stdin_isatty:
            ask = ask_terminal(ctx)
        if ask is None:
            p.line(NO_TERMINAL)
            report.update(confirmed=False, exit_code=exitcodes.PROBLEM)
            return report
        n = sum(1 for e in entries if not e["problem"])
        if not ask(f"Halt {'this kernel' if n == 1 else f'these {n} kernels'}?"):
            p.line("Nothing was halted.")
            report.update(confirmed=False, exit_code=exitcodes.PROBLEM)
            return report
    report["confirmed"] = True
    p.line()
    ctx.stdout.flush()
    results = halt(entries, servers, grace)
    write_results(p, results, grace)
    report.update(
        results=results,
        freed_bytes=sum(r["freed_bytes"] or 0 for r in results if r["halted"]),
        exit_code=exitcodes.OK if all(r["halted"] for r in results) else exitcodes.PROBLEM,
    )
    return report
