"""Run a notebook's cells in a child process and record how it ended.

This module gathers data; it prints nothing. While the child runs, its output and
its progress events go to a ``sink`` (an object with ``output(text)`` and
``event(dict)``); at the end ``execute`` returns one plain dict.

The child is ``wizard/run_child.py`` run by the notebook's interpreter, in its own
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

SAMPLE_SECONDS = 0.05
GRACE_SECONDS = 2.0  # after SIGINT, and again after SIGTERM, before SIGKILL
DRAIN_SECONDS = 0.5  # output still read after the child ended (grandchildren may hold the pipe)
TAIL_BYTES = 4096
ADDRESS_SPACE = "address space (RLIMIT_AS)"  # the limit without a cgroup


# -- cgroups ---------------------------------------------------------------------------


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def own_memory_cgroup(root):
    """(version, directory) of this process's memory cgroup; raises OSError/ValueError.

    Found the way the memory probe finds it (v1 memory line first, else v2).
    """
    from wizard.probes import memory

    v2, v1 = memory.parse_own_cgroups(root.read_text("/proc/self/cgroup"))
    mounts = memory.parse_mounts(root.read_text("/proc/self/mountinfo", limit=4 << 20))
    if "memory" in v1 and mounts.get("memory"):
        found = memory.locate_cgroup(root, mounts["memory"], v1["memory"])
        if found:
            return 1, found[0][0][0]
    if v2 is not None and mounts.get("cgroup2"):
        found = memory.locate_cgroup(root, mounts["cgroup2"], v2)
        if found:
            return 2, found[0][0][0]
    raise ValueError("no memory cgroup mounted")


def make_cgroup(root, name, limit_bytes):
    """A new memory cgroup under our own, limited when asked. Raises OSError/ValueError."""
    if not root.real:
        raise ValueError("the system root is a fixture tree")
    version, base = own_memory_cgroup(root)
    path = os.path.join(base, name)
    os.mkdir(path)
    try:
        if version == 1:
            if limit_bytes:
                _write(os.path.join(path, "memory.limit_in_bytes"), str(limit_bytes))
                memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
                if os.path.exists(memsw):
                    _write(memsw, str(limit_bytes))
        else:
            if not os.path.exists(os.path.join(path, "memory.max")):
                _write(os.path.join(base, "cgroup.subtree_control"), "+memory")
            if limit_bytes:
                _write(os.path.join(path, "memory.max"), str(limit_bytes))
                swap = os.path.join(path, "memory.swap.max")
                if os.path.exists(swap):
                    _write(swap, "0")
    except OSError:
        os.rmdir(path)
        raise
    return {"version": version, "path": path, "limit_bytes": limit_bytes}


def cgroup_stats(cg):
    """Peak usage, OOM kills and failures of our child cgroup (None where unreadable)."""
    path, stats = cg["path"], {"peak_bytes": None, "oom_kills": None, "failcnt": None}
    names = (
        {"peak_bytes": "memory.max_usage_in_bytes", "failcnt": "memory.failcnt"}
        if cg["version"] == 1
        else {"peak_bytes": "memory.peak"}
    )
    for key, name in names.items():
        try:
            stats[key] = int(_read(os.path.join(path, name)).strip())
        except (OSError, ValueError):
            pass  # memory.peak needs Linux 5.19; the sampled peak stands in
    events = "memory.oom_control" if cg["version"] == 1 else "memory.events"
    try:
        for line in _read(os.path.join(path, events)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                stats["oom_kills"] = int(value)
            elif key == "max" and cg["version"] == 2:
                stats["failcnt"] = int(value)
    except (OSError, ValueError):
        pass  # the counter is optional evidence; the exit signal still tells
    return stats


def cgroup_pids(cg):
    try:
        return [int(x) for x in _read(os.path.join(cg["path"], "cgroup.procs")).split()]
    except (OSError, ValueError):
        return []


def remove_cgroup(cg, errors):
    """Kill what is left in the cgroup and remove it."""
    import signal

    deadline = time.monotonic() + 3.0
    while True:
        pids = cgroup_pids(cg)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # already gone
        try:
            os.rmdir(cg["path"])
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if time.monotonic() > deadline:
                errors.append(f"could not remove the cgroup {cg['path']}: {exc.strerror}")
                return False
            time.sleep(0.05)


# -- the process tree ------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_pids(pid):
    """pid and its descendants, from /proc/PID/task/TID/children."""
    pids, i = [pid], 0
    while i < len(pids):
        p = pids[i]
        i += 1
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue  # gone already
        for t in tasks:
            try:
                pids.extend(int(x) for x in _read(f"/proc/{p}/task/{t}/children").split())
            except (OSError, ValueError):
                continue
    return pids


def tree_pids_scan(pid):
    """The same from a scan of every /proc/PID/stat (kernels without the children file)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = _read(f"/proc/{name}/stat")
                parent[int(name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [c for c, p in parent.items() if p in frontier]
        found.extend(frontier)
    return found


def rss_of(pids):
    total = 0
    for p in pids:
        try:
            total += int(_read(f"/proc/{p}/statm").split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            continue  # exited between listing and reading
    return total


class Sampler:
    """Peak resident memory of the child's process tree, sampled."""

    def __init__(self, pid, cg):
        self.pid, self.cg = pid, cg
        self.peak = 0
        self.samples = 0
        self.proc = os.path.isdir("/proc/self")
        self.children_file = os.path.exists(f"/proc/self/task/{os.getpid()}/children")
        self.next_full_scan = 0.0

    def sample(self, now):
        if not self.proc:
            return
        if self.cg:
            pids = cgroup_pids(self.cg)
        elif self.children_file:
            pids = tree_pids(self.pid)
        elif now >= self.next_full_scan:
            pids = tree_pids_scan(self.pid)
            self.next_full_scan = now + 0.25
        else:
            return
        self.samples += 1
        self.peak = max(self.peak, rss_of(pids))


# -- the marker protocol ---------------------------------------------------------------


class MarkerStream:
    """Splits the child's output into plain output and marker events."""

    def __init__(self, token):
        import codecs

        self.prefix = b"\x1e" + token.encode("ascii")
        self.buf = b""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.tail = b""

    def feed(self, data, final=False):
        """Yield ("out", text) and ("ev", dict) items for ``data``."""
        import json

        self.buf += data
        while self.buf:
            idx = self.buf.find(self.prefix)
            if idx == -1:
                # Hold back a possible start of a marker split across reads.
                hold = self.buf.rfind(b"\x1e", max(0, len(self.buf) - len(self.prefix)))
                cut = len(self.buf) if final or hold == -1 else hold
                out, self.buf = self.buf[:cut], self.buf[cut:]
                if out:
                    yield "out", self._text(out)
                break
            if idx:
                yield "out", self._text(self.buf[:idx])
                self.buf = self.buf[idx:]
            end = self.buf.find(b"\n")
            if end == -1:
                if final:
                    yield "out", self._text(self.buf)
                    self.buf = b""
                break
            raw, self.buf = self.buf[len(self.prefix) : end], self.buf[end + 1 :]
            try:
                yield "ev", json.loads(raw.decode("ascii"))
            except ValueError:
                yield "out", self._text(raw + b"\n")
        if final:
            rest = self.decoder.decode(b"", final=True)
            if rest:
                yield "out", rest

    def _text(self, data):
        self.tail = (self.tail + data)[-TAIL_BYTES:]
        return self.decoder.decode(data)


# -- faulthandler's report -------------------------------------------------------------


def parse_fault(text):
    """The stack of faulthandler's last report: the current thread's frames, innermost first."""
    import re

    if not text.strip():
        return None
    start = max(text.rfind("Fatal Python error"), 0)
    report = text[start:]
    fatal = report.startswith("Fatal Python error")
    headline = report.splitlines()[0].split(":", 1)[-1].strip() if fatal else None
    blocks, current = [], None
    for line in report.splitlines():
        head = re.match(r"^(Current thread|Thread|Stack)\b.*:$", line.strip())
        if head:
            current = {"current": line.strip().startswith("Current"), "frames": []}
            blocks.append(current)
            continue
        m = re.match(r'^\s+File "(.*)", line (\d+) in (.*)$', line)
        if m and current is not None:
            current["frames"].append(
                {"file": m.group(1), "line": int(m.group(2)), "function": m.group(3).strip()}
            )
    chosen = next((b for b in blocks if b["current"]), blocks[0] if blocks else None)
    modules = None
    m = re.search(r"^Extension modules: (.*?)(?: \(total: \d+\))?$", report, re.M)
    if m:
        modules = [x.strip() for x in m.group(1).split(",") if x.strip()]
    return {
        "fatal": fatal,
        "headline": headline,
        "frames": chosen["frames"] if chosen else [],
        "threads": len(blocks),
        "extension_modules": modules,
    }


# -- the run ---------------------------------------------------------------------------


def runner_source():
    """The path of run_child.py, or its text when the package is not on disk (a zip)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_child.py")
    if os.path.isfile(here):
        return here, None
    import pkgutil

    return None, pkgutil.get_data("wizard", "run_child.py")


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
            cg = make_cgroup(root, f"wizard-run-{os.getpid()}-{token}", limit)
            result["cgroup"] = dict(cg)
            result["limit_mode"] = f"cgroup v{cg['version']}" if limit else None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if limit:
                result["limit_mode"] = ADDRESS_SPACE
                result["limit_note"] = f"no child cgroup ({reason}); an address-space limit"
        _run(plan, sink, result, runner, spec_file, token, cg)
        try:
            result["fault"] = parse_fault(_read(fault_file))
        except FileNotFoundError:
            pass  # the child never got as far as enabling faulthandler
        except OSError as exc:
            errors.append(f"faulthandler's report could not be read: {exc.strerror}")
        _line_from_fault(result)
    finally:
        if cg is not None:
            result["cgroup"].update(cgroup_stats(cg))
            result["cgroup"]["removed"] = remove_cgroup(cg, errors)
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
            _write(os.path.join(cg["path"], "cgroup.procs"), str(os.getpid()))
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
    stream = MarkerStream(token)
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
            for pid in cgroup_pids(cg):
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
            stdin=subprocess.DEVNULL,
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
        sampler = Sampler(proc.pid, cg)
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
                    if seen["hello"]:
                        try:
                            os.kill(proc.pid, signal.SIGUSR1)  # faulthandler: where it is stuck
                        except OSError:
                            pass  # ended just now
                        time.sleep(0.2)
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
        result["strays"] = _stop_strays(proc.pid, cg, signal_group, signal)

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


def _stat_fields(pid):
    """(state, pgrp) of a process, or None once it is gone."""
    try:
        stat = _read(f"/proc/{pid}/stat")
        fields = stat[stat.rindex(")") + 2 :].split()
        return fields[0], int(fields[2])
    except (OSError, ValueError, IndexError):
        return None


def live_leftovers(pgid, cg):
    """Processes still running (zombies aside) in the child's group or its cgroup."""
    found = set()
    if cg is not None:
        found.update(cgroup_pids(cg))
    if os.path.isdir("/proc/self"):
        for name in os.listdir("/proc"):
            if name.isdigit():
                fields = _stat_fields(int(name))
                if fields and fields[1] == pgid:
                    found.add(int(name))
    else:  # no /proc: ask the group as a whole
        try:
            os.killpg(pgid, 0)
            found.add(pgid)
        except OSError:
            pass  # no one left
    return {p for p in found if (_stat_fields(p) or ("Z",))[0] not in ("Z", "X")}


def _stop_strays(pid, cg, signal_group, signal):
    """Processes the cells left running (background jobs): stopped, and counted.

    Zombies do not count: their new parent may reap them late (this one may be pid 1).
    """
    left = live_leftovers(pid, cg)
    if not left:
        return 0
    signal_group(signal.SIGTERM)
    for p in left:
        try:
            os.kill(p, signal.SIGTERM)  # also those that left the group (setsid)
        except OSError:
            pass  # gone already
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if not live_leftovers(pid, cg) & left:
            return len(left)
        time.sleep(0.05)
    signal_group(signal.SIGKILL)
    for p in live_leftovers(pid, cg) & left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass  # gone already
    return len(left)


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
