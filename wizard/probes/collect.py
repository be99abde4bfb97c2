"""Run the probes and gather their data: the facts the rules read.

A probe that fails in a way it did not foresee costs its own check only: the
failure becomes one entry in ``errors`` (``{"check", "message"}``) and the other
probes still run.
"""

import time

from wizard.base import thresholds
from wizard.base.failure import error, where
from wizard.base.fmt import parse_iso


def guard(check, errors, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None with a failure of ``check`` added to ``errors``."""
    try:
        return fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a probe bug must not hide the other checks
        errors.append(error(check, f"check failed: {type(exc).__name__} ({where(exc)})"))
        return None


def _probe_errors(errors, check, result):
    for text in (result or {}).get("errors") or []:
        errors.append(error(check, text))


def gather(root=None, deep=False, server_timeout=1.0):
    """Return the facts dict: memory, kernels, servers, kernelspecs, deaths, errors, now."""
    from wizard.probes import kernel_cgroups, kernelspecs, memory
    from wizard.system import historydb, recorder_lock
    from wizard.system.sysroot import SysRoot

    root = root or SysRoot()
    errors = []
    facts = {"now": time.time(), "errors": errors}
    # the kernels first: their scan of /proc also tells which userspace OOM killers run
    kernels_and_servers(root, facts, server_timeout)
    daemons = facts["kernels"].get("daemons") or []
    facts["memory"] = guard("memory", errors, memory.probe, root, daemons=daemons) or {}
    own = (facts["memory"].get("cgroup") or {}).get("path")
    found = guard(
        "kernels", errors, kernel_cgroups.annotate, root, facts["kernels"].get("kernels") or [], own
    )
    if facts["memory"]:
        facts["memory"]["kernel_cgroups"] = found or []
        facts["memory"]["oom_log_kernels"] = kernel_cgroups.kills_in(facts["memory"], found or [])
    facts["kernelspecs"] = guard("kernelspecs", errors, kernelspecs.probe, root, deep=deep) or {
        "kernelspecs": []
    }
    db = root.path(historydb.default_db_path())  # inside a fixture tree: its own (none)
    facts["recorder"] = recorder_lock.recorder_status(db)
    found = []
    facts["deaths"] = historydb.recent_deaths(db, thresholds.RECENT_DEATH_SECONDS, errors=found)
    facts["death_counts"] = historydb.death_counts(db, thresholds.RECENT_DEATH_SECONDS)
    errors.extend(error("deaths", text) for text in found)
    for key in ("memory", "kernels", "servers", "kernelspecs"):
        _probe_errors(errors, key, facts[key])
    return facts


def kernels_and_servers(root, facts, server_timeout=1.0, uid=None):
    """Fill ``facts`` with the kernels and servers, merged, with each kernel's idle time."""
    from wizard.probes import kernels, servers

    errors = facts["errors"]
    facts["kernels"] = guard("kernels", errors, kernels.probe, root, uid) or {"kernels": []}
    facts["servers"] = guard(
        "servers", errors, servers.probe, root, timeout_total=server_timeout
    ) or {"servers": []}
    if facts["kernels"].get("kernels") and facts["servers"].get("servers"):
        guard("servers", errors, servers.merge, facts["kernels"], facts["servers"])
    for k in facts["kernels"].get("kernels") or []:
        for key in ("execution_state", "last_activity", "server_pid"):
            k.setdefault(key, None)
        if k.get("idle_seconds") is None:
            k["idle_seconds"] = idle_seconds(k, facts["now"])
    return facts


def gather_kernels(root=None, server_timeout=2.0, uid=None):
    """This user's kernels merged with what the servers know, for ``halt``.

    ``{"now", "kernels": [kernel...], "servers": servers-probe result, "errors": [...]}``.
    A server that is alive but could not be asked is one error line.
    """
    from wizard.system.sysroot import SysRoot

    facts = {"now": time.time(), "errors": []}
    kernels_and_servers(root or SysRoot(), facts, server_timeout, uid)
    errors = facts["errors"]
    for key in ("kernels", "servers"):
        _probe_errors(errors, key, facts[key])
    for s in facts["servers"].get("servers") or []:
        if s.get("alive") and not s.get("reachable") and s.get("error"):
            errors.append(
                error(
                    "servers",
                    f"the Jupyter server pid {s.get('pid')} ({s.get('url')}) could not be "
                    f"asked: {s['error']}",
                )
            )
    facts["kernels"] = facts["kernels"].get("kernels") or []
    return facts


def idle_seconds(k, now):
    """Seconds since a server last saw the kernel active; None if busy or no server says."""
    if k.get("execution_state") == "busy" or not k.get("last_activity"):
        return None
    stamp = parse_iso(k["last_activity"])
    return None if stamp is None else max(0.0, now - stamp)
