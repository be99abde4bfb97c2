"""Run a notebook's cells in a child process and record how it ended.

This module gathers data; it prints nothing. While the child runs, its output and
its progress events go to a ``sink`` (an object with ``output(text)`` and
``event(dict)``); at the end ``execute`` returns one plain dict.

The child is ``wizard/engines/run_child.py`` run by the notebook's interpreter, in its own
session and process group, in the notebook's folder, with stdin from /dev/null
(a background process group reading the terminal would be stopped). Its stdout
and stderr share one pipe, so output keeps the order a terminal would show;
marker lines on that pipe say which cell runs and how a cell failed.

Memory: where this process may create a cgroup (v1 or v2 memory controller,
writable), the child runs in a fresh cgroup under our own, with the limit asked
for (memory and memory+swap), which also measures the peak of the whole process
tree and counts OOM kills; the cgroup is removed afterwards. Elsewhere a limit
is an address-space limit (RLIMIT_AS) and the peak is sampled from /proc.

Process-tree sampling reads the live /proc, not ``SysRoot``: the child is a real
process on this machine, never part of a fixture tree.
"""

import os
import sys
import time

from wizard.engines import run_markers, run_procs
from wizard.system import cgroup_child

SAMPLE_SECONDS = 0.05
GRACE_SECONDS = 2.0  # after SIGINT, and again after SIGTERM, before SIGKILL
DRAIN_SECONDS = 0.5  # output still read after the child ended (grandchildren may hold the pipe)
ADDRESS_SPACE = "address space (RLIMIT_AS)"  # the limit without a cgroup


# -- the run ---------------------------------------------------------------------------


def _read(path):
    with open(path) as f:
        return f.read()


def runner_source():
    """The path of run_child.py, or its text when the package is not on disk (a zip)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_child.py")
    if os.path.isfile(here):
        return here, None
    import pkgutil

    return None, pkgutil.get_data("wizard.engines", "run_child.py")


def execute(plan, sink, root=None):
    """Run ``plan`` and return what happened.

    plan: {"python": path, "cells": [{"n": int, "source": str}], "cwd": dir, "notebook": path,
           "timeout": seconds|None, "memory_limit": bytes|None}
    """
    import json
    import secrets
    import shutil
    import tempfile

    from wizard.system.sysroot import SysRoot

    root = root or SysRoot()
    errors = []
    result = {
        "outcome": None,
        "cell": None,
        "line": None,
        "exception": None,
        "exit_status": None,
        "system_exit": False,
        "timeout_in_startup": False,
        "signal_number": None,
        "fault": None,
        "cells": [],
        "skipped": [],
        "ipython": None,
        "python_version": None,
        "duration_seconds": None,
        "peak_rss_bytes": None,
        "maxrss_bytes": None,
        "cgroup": None,
        "limit_mode": None,
        "limit_note": None,
        "strays": 0,
        "stopped_by": None,
        "output_tail": "",
        "start_error": None,
        "pid": None,
        "errors": errors,
    }
    token = secrets.token_hex(6)
    tmp = tempfile.mkdtemp(prefix="wizard-run-")
    cg = None
    try:
        fault_file = os.path.join(tmp, "faulthandler.txt")
        spec_file = os.path.join(tmp, "cells.json")
        with open(spec_file, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "token": token,
                    "fault_file": fault_file,
                    "notebook": plan["notebook"],
                    "cells": plan["cells"],
                },
                f,
            )
        runner, text = runner_source()
        if runner is None:
            runner = os.path.join(tmp, "run_child.py")
            with open(runner, "wb") as f:
                f.write(text)

        limit = plan.get("memory_limit")
        try:
            cg = cgroup_child.make(root, f"wizard-run-{os.getpid()}-{token}", limit)
            result["cgroup"] = dict(cg)
            result["limit_mode"] = f"cgroup v{cg['version']}" if limit else None
            if limit and cg.get("note"):
                result["limit_note"] = cg["note"]
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if limit:
                result["limit_mode"] = ADDRESS_SPACE
                result["limit_note"] = (
                    f"no child cgroup ({reason}); an address-space limit instead: running "
                    "out of it shows as MemoryError, not as the kernel's OOM kill (SIGKILL)"
                ) + cgroup_child.systemd_route(limit)
        _run(plan, sink, result, runner, spec_file, token, cg)
        try:
            result["fault"] = run_markers.parse_fault(_read(fault_file))
        except FileNotFoundError:
            pass  # the child never got as far as enabling faulthandler
        except OSError as exc:
            errors.append(f"faulthandler's report could not be read: {exc.strerror}")
        _line_from_fault(result)
    finally:
        if cg is not None:
            result["cgroup"].update(cgroup_child.stats(cg))
            result["cgroup"]["removed"] = cgroup_child.remove(cg, errors)
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(tmp):
            errors.append(f"could not remove the temporary folder {tmp}")
    return result


def _line_from_fault(result):
    """For a crash or a stop, the running cell's line from faulthandler's stack."""
    fault, n = result["fault"], result["cell"]
    if not fault or n is None or result["line"] is not None:
        return
    mine = [f for f in fault["frames"] if f["file"] == f"<cell {n}>"]
    if mine:
        result["line"] = mine[-1]["line"]  # the outermost: frames come innermost first


def _preexec(cg, limit):
    """What the child does between fork and exec; None when nothing (then Popen may use
    vfork, and wait4's ru_maxrss does not count the fork's copy of this process)."""
    if cg is None and not limit:
        return None

    def setup():
        if cg is not None:
            cgroup_child.enter(cg)
        elif limit:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return setup


def _run(plan, sink, result, runner, spec_file, token, cg):
    import select
    import signal
    import subprocess

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")  # no windows: plt.show() returns at once
    stream = run_markers.MarkerStream(token)
    status = rusage = proc = None
    running = None  # the cell that started and has not finished
    seen = {"hello": False, "finished": False, "event": None}
    stop = {"reason": None, "stage": 0, "at": 0.0}
    timeout = plan.get("timeout")
    drain_until = None
    next_sample = 0.0

    def handle(kind, item):
        nonlocal running
        if kind == "out":
            sink.output(item)
            return
        ev = item.get("ev")
        if ev == "hello":
            seen["hello"] = True
            result["python_version"] = item.get("python")
        elif ev == "start":
            running = item.get("cell")
            result["cells"].append({"n": running, "seconds": None, "status": "running"})
        elif ev == "done":
            _close_cell(result, item.get("cell"), "ok", item.get("seconds"))
            running = None
        elif ev == "skip":
            result["skipped"].append({k: item.get(k) for k in ("cell", "line", "text", "reason")})
        elif ev == "ipython":
            result["ipython"] = {"available": item.get("available"), "detail": item.get("detail")}
        elif ev in ("error", "interrupted", "exit"):
            seen["event"] = item
            _close_cell(result, item.get("cell"), ev, item.get("seconds"))
        elif ev == "finished":
            seen["finished"] = True
        sink.event(item)

    def signal_group(sig):
        try:
            os.killpg(proc.pid, sig)
        except OSError:
            pass  # the group is gone
        if cg is not None and sig == signal.SIGKILL:
            for pid in cgroup_child.pids_in(cg):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass  # exited meanwhile

    def begin_stop(reason, now):
        if stop["reason"] is None:
            stop.update(reason=reason, stage=1, at=now)
            signal_group(signal.SIGINT)
        elif stop["stage"] < 3:  # asked again (a second Ctrl-C): no more waiting
            stop.update(stage=3, at=now)
            signal_group(signal.SIGKILL)

    old_term = _trap_sigterm(signal)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [plan["python"], "-u", runner, spec_file],
            cwd=plan["cwd"],
            env=env,
            # on a terminal input() is answered there, as in a notebook's input box
            stdin=None if plan.get("stdin_tty") else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_preexec(cg, plan.get("memory_limit")),  # before exec: into the cgroup
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _restore_sigterm(signal, old_term)
        result["outcome"] = "not-started"
        result["start_error"] = getattr(exc, "strerror", None) or str(exc)
        return
    except BaseException:
        _restore_sigterm(signal, old_term)
        raise
    try:
        result["pid"] = proc.pid
        fd = proc.stdout.fileno()
        sampler = run_procs.Sampler(proc.pid, cg)
        while True:
            try:
                now = time.monotonic()
                if fd is not None:
                    ready, _, _ = select.select([fd], [], [], SAMPLE_SECONDS)
                    if ready:
                        data = os.read(fd, 65536)
                        if data:
                            for kind, item in stream.feed(data):
                                handle(kind, item)
                        else:
                            fd = None
                else:
                    time.sleep(SAMPLE_SECONDS / 2)
                now = time.monotonic()
                if now >= next_sample and status is None:
                    sampler.sample(now)
                    next_sample = now + SAMPLE_SECONDS
                if status is None:
                    pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        status, rusage = st, ru
                        result["duration_seconds"] = round(now - started, 3)
                        drain_until = now + DRAIN_SECONDS
                if status is not None and (fd is None or now >= drain_until):
                    break
                if timeout and stop["reason"] is None and now - started >= timeout:
                    if not result["cells"]:  # still starting: no frame of the user's to show
                        result["timeout_in_startup"] = True
                        stop.update(reason="timeout", stage=3, at=now)
                        signal_group(signal.SIGKILL)
                    elif seen["hello"]:
                        try:
                            os.kill(proc.pid, signal.SIGUSR1)  # faulthandler: where it is stuck
                        except OSError:
                            pass  # ended just now
                        time.sleep(0.2)
                    if stop["reason"] is None:
                        begin_stop("timeout", now)
                if stop["reason"] and status is None and now - stop["at"] >= GRACE_SECONDS:
                    if stop["stage"] == 1:
                        stop.update(stage=2, at=now)
                        signal_group(signal.SIGTERM)
                    elif stop["stage"] == 2:
                        stop.update(stage=3, at=now)
                        signal_group(signal.SIGKILL)
            except KeyboardInterrupt:
                begin_stop("interrupted", time.monotonic())
    finally:
        if status is None:  # an error in this loop: never leave the child behind
            signal_group(signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
        _restore_sigterm(signal, old_term)
        for kind, item in stream.feed(b"", final=True):
            handle(kind, item)
        proc.stdout.close()
        proc.returncode = _returncode(status)  # reaped here, not by Popen
        result["strays"] = run_procs.stop_strays(proc.pid, cg, signal_group, signal)

    result["output_tail"] = stream.tail.decode("utf-8", "replace")
    result["peak_rss_bytes"] = sampler.peak if sampler.samples else None
    if rusage is not None:
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: KiB on Linux
        result["maxrss_bytes"] = rusage.ru_maxrss * scale
    if os.WIFSIGNALED(status):
        result["signal_number"] = os.WTERMSIG(status)
    elif os.WIFEXITED(status):
        result["exit_status"] = os.WEXITSTATUS(status)
    if result["duration_seconds"] is None:
        result["duration_seconds"] = round(time.monotonic() - started, 3)
    result["stopped_by"] = stop["reason"]
    _outcome(result, seen, running)


def _close_cell(result, n, status, seconds):
    for c in reversed(result["cells"]):
        if c["n"] == n:
            c["status"], c["seconds"] = status, seconds
            return


def _returncode(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else None


def _trap_sigterm(signal):
    """While the child runs, SIGTERM to the wizard stops it like Ctrl-C does."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, raise_interrupt)


def _restore_sigterm(signal, old):
    if old is not None:
        signal.signal(signal.SIGTERM, old)


def _outcome(result, seen, running):
    ev = seen["event"]
    if result["start_error"]:
        result["outcome"] = "not-started"
    elif result["stopped_by"]:
        result["outcome"] = result["stopped_by"]
        result["cell"] = running if running is not None else (ev or {}).get("cell")
    elif result["signal_number"] is not None:
        result["outcome"] = "signal"
        result["cell"] = running
    elif ev is not None and ev.get("ev") == "error":
        result["outcome"] = "exception"
    elif ev is not None and ev.get("ev") == "exit":
        result["outcome"] = "exit"
        result["cell"] = ev.get("cell")
        result["system_exit"] = True  # sys.exit()/raise SystemExit, not os._exit()
    elif seen["finished"] and result["exit_status"] == 0:
        result["outcome"] = "finished"
    elif not seen["hello"]:
        result["outcome"] = "not-started"
        result["start_error"] = f"the interpreter exited with status {result['exit_status']}"
    else:
        result["outcome"] = "exit"
        result["cell"] = running
    if ev is not None and ev.get("ev") in ("error", "interrupted"):
        result["cell"] = ev.get("cell")
        result["line"] = ev.get("line")
        result["exception"] = {
            k: ev.get(k) for k in ("type", "module", "message", "frames", "line", "cell")
        }
