"""Run the probes and gather their data: the facts the rules read.

A probe that fails in a way it did not foresee costs its own check only: the
failure becomes one line in ``errors`` and the other probes still run.
"""

import time


def _guard(name, errors, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a probe bug must not hide the other checks
        errors.append(f"{name} check failed: {type(exc).__name__} ({_where(exc)})")
        return None


def _where(exc):
    # The place, not the message: messages can carry paths or values we do not vet.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown place"
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"


def gather(root=None, deep=False, server_timeout=1.0):
    """Return the facts dict: memory, kernels, servers, kernelspecs, errors, now."""
    from wizard.probes import kernels, kernelspecs, memory, servers
    from wizard.system.sysroot import SysRoot

    root = root or SysRoot()
    errors = []
    facts = {"now": time.time(), "errors": errors}
    facts["memory"] = _guard("memory", errors, memory.probe, root) or {}
    facts["kernels"] = _guard("kernels", errors, kernels.probe, root) or {"kernels": []}
    facts["servers"] = _guard(
        "servers", errors, servers.probe, root, timeout_total=server_timeout
    ) or {"servers": []}
    if facts["kernels"].get("kernels") and facts["servers"].get("servers"):
        _guard("servers", errors, servers.merge, facts["kernels"], facts["servers"])
    facts["kernelspecs"] = _guard("kernelspecs", errors, kernelspecs.probe, root, deep=deep) or {
        "kernelspecs": []
    }
    _idle_times(facts)
    from wizard.diagnosis.rules import RECENT_DEATH_SECONDS
    from wizard.system import historydb, recorder_lock

    db = root.path(historydb.default_db_path())  # inside a fixture tree: its own (none)
    facts["recorder"] = recorder_lock.recorder_status(db)
    facts["deaths"] = historydb.recent_deaths(db, RECENT_DEATH_SECONDS, errors=errors)
    for key in ("memory", "kernels", "servers", "kernelspecs"):
        for line in facts[key].get("errors") or []:
            errors.append(f"{key}: {line}")
    return facts


def _idle_times(facts):
    """Seconds since each kernel's last activity, where a server reported one."""
    now = facts["now"]
    for k in facts["kernels"].get("kernels") or []:
        stamp = k.get("last_activity")
        if not stamp or k.get("idle_seconds") is not None:
            continue
        seconds = parse_iso(stamp)
        if seconds is not None:
            k["idle_seconds"] = max(0.0, now - seconds)


def parse_iso(stamp):
    """Epoch seconds of an ISO 8601 time such as 2026-11-23T18:44:21.123456Z; None if unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
