"""Kernel deaths and kernel memory as Prometheus metrics.

Two ways out, one set of definitions (``FAMILIES``):

- inside a Jupyter server, ``install(serverapp)`` (called by ``wizard.server_ext``)
  registers a collector on prometheus_client's default registry, the one the
  server's own ``/metrics`` serves: same URL, same authentication;
- beside the kernels, ``python -m wizard watch --textfile DIR`` writes the same
  families to ``DIR/kernel_wizard.prom`` after every sample, for node_exporter's
  textfile collector (``write_textfile``: a temporary file renamed over the old one).

The metrics (labels are bounded: a cause from ``wizard.diagnosis.endings.CAUSES``, a signal
name, a kernelspec name; never a kernel id, a notebook path or a user):

``jupyter_kernel_deaths_total{cause, signal, kernel_name}``
    counter: kernels that died, by the recorder's cause (``oom-kill``, ``signal``,
    ``exit``, ``unknown``; a requested shutdown or restart is not a death) and the
    signal that ended them (empty for an exit). The ``oom-kill`` series of every
    kernelspec seen running starts at 0, so ``increase()`` sees the first kill.
``jupyter_kernel_memory_bytes{kernel_name}``
    gauge: resident memory of the running kernels of that kernelspec, each with all
    its child processes, summed (one series per kernelspec, not per kernel).
``jupyter_kernel_memory_limit_bytes{kernel_name}``
    gauge: the memory limit that applies to those kernels: the smallest limit of
    their memory cgroup and its ancestors, else the host's memory.
``jupyter_kernel_memory_limit_share``
    gauge: the highest share of a memory limit the kernels use: the kernels are
    grouped by the cgroup whose limit applies to them (the host's memory for those
    with none), each group's memory against that group's limit. Above 1 only when a
    real group is over its limit, however many kernels run in other cgroups.
``jupyter_kernel_oom_kills_total``
    counter: the OOM-kill count of the memory cgroup the server (or the recorder's
    kernels) live in, as the kernel keeps it (``memory.events`` ``oom_kill`` on
    cgroup v2, ``memory.oom_control`` on v1). Absent when no cgroup can be read.

Nothing here needs prometheus_client except ``install``; the text format is written
here (version 0.0.4, what node_exporter reads).
"""

import os
import threading
import time

from wizard.diagnosis import endings as _deaths

DEATHS = "jupyter_kernel_deaths_total"
MEMORY = "jupyter_kernel_memory_bytes"
LIMIT = "jupyter_kernel_memory_limit_bytes"
OOM_KILLS = "jupyter_kernel_oom_kills_total"
SHARE = "jupyter_kernel_memory_limit_share"

# name -> (type, help, label names)
FAMILIES = {
    DEATHS: (
        "counter",
        "Kernels that died, by cause (oom-kill, signal, exit, unknown), signal and kernelspec; "
        "requested shutdowns and restarts are not counted.",
        ("cause", "signal", "kernel_name"),
    ),
    MEMORY: (
        "gauge",
        "Resident memory of the running kernels of a kernelspec, child processes included.",
        ("kernel_name",),
    ),
    LIMIT: (
        "gauge",
        "Memory limit that applies to the kernels of a kernelspec (their cgroup's, else the "
        "host's memory).",
        ("kernel_name",),
    ),
    SHARE: (
        "gauge",
        "Highest share of a memory limit used by the kernels under it (kernels grouped by "
        "the cgroup whose limit applies to them).",
        (),
    ),
    OOM_KILLS: (
        "counter",
        "OOM kills counted by the memory cgroup the kernels run in.",
        (),
    ),
}

TEXTFILE_NAME = "kernel_wizard.prom"


# ---------------------------------------------------------------------------
# Deaths: counted as the recorder settles them


class DeathCounter:
    """``{(cause, signal, kernel_name): count}``, safe to feed from any thread."""

    def __init__(self):
        self.counts = {}
        self.mutex = threading.Lock()

    def record(self, death):
        """Count a death as the recorder stored it (a dict with ``cause``, ``signal``,
        ``kernel_name``). Returns whether it counted (a shutdown does not)."""
        cause = death.get("cause") or _deaths.UNKNOWN
        if cause == _deaths.SHUTDOWN:
            return False
        if cause not in _deaths.CAUSES:
            cause = _deaths.UNKNOWN
        key = (cause, death.get("signal") or "", death.get("kernel_name") or "")
        with self.mutex:
            self.counts[key] = self.counts.get(key, 0) + 1
        return True

    def seen(self, kernel_name):
        """A kernel of this kernelspec runs: each of its ``ZERO_SERIES`` exists from now
        on, at 0."""
        name = kernel_name or ""
        if (_deaths.OOM_KILL, "SIGKILL", name) in self.counts:
            return
        with self.mutex:
            for cause, sig in zero_series():
                self.counts.setdefault((cause, sig, name), 0)

    def samples(self):
        with self.mutex:
            items = sorted(self.counts.items())
        return [(dict(zip(FAMILIES[DEATHS][2], key)), n) for key, n in items]


def zero_series():
    """``[(cause, signal)]`` of the death series every seen kernelspec starts at 0."""
    from wizard.diagnosis import signals

    out = [(_deaths.OOM_KILL, "SIGKILL")]
    out += [("signal", name) for name in signals.BY_NAME]
    out += [("exit", ""), (_deaths.UNKNOWN, "")]
    return out


class Groups:
    """Memory of kernels summed by the cgroup whose limit applies; the highest share."""

    def __init__(self):
        self.by = {}  # limit path (or "host") -> [memory, limit]

    def add(self, rss, limit, limit_path):
        if not limit:
            return
        g = self.by.setdefault(limit_path or "host", [0, limit])
        g[0] += rss
        g[1] = min(g[1], limit)

    def share(self):
        if not self.by:
            return None
        return max(mem / lim for mem, lim in self.by.values())


# The server's counter: wizard.server_ext feeds it, the collector reads it.
deaths = DeathCounter()


# ---------------------------------------------------------------------------
# Memory of kernels given by pid (inside the server)


class MemoryReader:
    """Memory of process trees and the cgroup limit over them, read from /proc and
    the cgroup files at each call (through wizard.engines.recorder.Cgroups)."""

    def __init__(self, root=None):
        from wizard.engines import recorder
        from wizard.system import procfs
        from wizard.system.sysroot import SysRoot

        self.root = root or SysRoot()
        self.proc = procfs.proc_dir(self.root)
        self.page = procfs.page_size()
        self.cgroups = recorder.Cgroups(self.root)
        self.host_total = procfs.host_total(self.root)

    def tree_rss(self, pid, tree):
        """RSS of ``pid`` and everything below it, or None when the process is gone."""
        from wizard.system import procfs

        rss = procfs.statm_rss(self.proc, pid, self.page)
        if rss is None:
            return None
        for d in tree.descendants(pid):
            rss += procfs.statm_rss(self.proc, d, self.page) or 0
        return rss

    def cgroup(self, pid, now, cache):
        """The cgroup reading (``wizard.engines.recorder.Cgroups.read``) of a process, or None."""
        cg = self.cgroups.of_pid(pid)
        if cg is None:
            return None
        if cg not in cache:
            cache[cg] = self.cgroups.read(cg[0], cg[1])
        return cache[cg]

    def families(self, kernels, counter, own_pid="self"):
        """The four families for ``kernels``: ``[(pid, kernel_name)]`` of running kernels."""
        from wizard.system import procfs

        now = time.time()
        tree = procfs.ProcTree(self.proc)
        cache = {}
        memory, limit = {}, {}
        groups = Groups()
        for pid, name in kernels:
            name = name or ""
            rss = self.tree_rss(pid, tree)
            if rss is None:
                continue  # it ended since it was listed
            counter.seen(name)
            memory[name] = memory.get(name, 0) + rss
            reading = self.cgroup(pid, now, cache) or {}
            lim = reading.get("limit_bytes") or self.host_total
            if lim is not None:
                limit[name] = min(limit.get(name, lim), lim)
                groups.add(
                    rss, lim, reading.get("limit_path") if reading.get("limit_bytes") else None
                )
        own = self.cgroup(own_pid, now, cache)
        ooms = (own or {}).get("oom_kills")
        return build(counter.samples(), memory, limit, ooms, groups.share())


def build(death_samples, memory, limit, oom_kills, share=None):
    """``{name: [(labels, value)]}`` in ``FAMILIES`` order from plain figures."""
    return {
        DEATHS: list(death_samples),
        MEMORY: [({"kernel_name": k}, v) for k, v in sorted(memory.items())],
        LIMIT: [({"kernel_name": k}, v) for k, v in sorted(limit.items())],
        SHARE: [({}, share)] if share is not None else [],
        OOM_KILLS: [({}, oom_kills)] if oom_kills is not None else [],
    }


# ---------------------------------------------------------------------------
# Inside a Jupyter server


def server_kernels(serverapp):
    """``[(pid, kernel_name)]`` of the server's running kernels (local processes only)."""
    out = []
    mkm = getattr(serverapp, "kernel_manager", None)
    if mkm is None:
        return out
    for kid in list(mkm.list_kernel_ids()):
        try:
            km = mkm.get_kernel(kid)
        except KeyError:
            continue  # shut down meanwhile
        prov = getattr(km, "provisioner", None)
        proc = getattr(prov, "process", None)
        pid = getattr(proc, "pid", None)
        if pid is None or getattr(proc, "returncode", None) is not None:
            continue  # not started yet, ended, or not a local process
        out.append((pid, getattr(km, "kernel_name", None)))
    return out


class ServerCollector:
    """A prometheus_client collector: the families, computed when ``/metrics`` is read."""

    def __init__(self, serverapp, counter=None, log=None):
        self.serverapp = serverapp
        self.counter = counter or deaths
        self.log = log
        self.reader = MemoryReader()
        self.said = set()

    def describe(self):
        return []  # nothing is collected at registration

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            fams = self.reader.families(server_kernels(self.serverapp), self.counter)
        except Exception as exc:  # a scrape must never fail because of this
            text = f"metrics: {type(exc).__name__}: {exc}"
            if self.log is not None and text not in self.said:
                self.said.add(text)
                self.log.warning("wizard.server_ext: %s", text)
            fams = build(self.counter.samples(), {}, {}, None)
        for name, samples in fams.items():
            kind, doc, labels = FAMILIES[name]
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = cls(name, doc, labels=list(labels))
            for lab, value in samples:
                fam.add_metric([lab[n] for n in labels], value)
            yield fam


_installed = None


def install(serverapp, log=None):
    """Register the collector on prometheus_client's default registry (once)."""
    global _installed
    if _installed is None:
        from prometheus_client import REGISTRY

        collector = ServerCollector(serverapp, log=log)
        REGISTRY.register(collector)
        _installed = collector
    return _installed


# ---------------------------------------------------------------------------
# Beside the kernels: from a wizard.engines.recorder.Recorder (python -m wizard watch)


class RecorderMetrics:
    """The families from the recorder's own samples: ``update(rec, new_deaths)`` after
    every ``rec.sample()``."""

    def __init__(self):
        self.counter = DeathCounter()
        self.oom_by_cgroup = {}  # cgroup path -> highest OOM-kill count seen

    def update(self, rec, new_deaths=()):
        for d in new_deaths:
            self.counter.record(d)
        memory, limit = {}, {}
        groups = Groups()
        for s in rec.known.values():
            if s.get("rss") is None:
                continue
            name = s.get("kernel_name") or ""
            self.counter.seen(name)
            memory[name] = memory.get(name, 0) + s["rss"]
            lim = s.get("limit") or rec.host_total
            if lim is not None:
                limit[name] = min(limit.get(name, lim), lim)
                reading = rec.cg_now.get(s.get("cgroup")) or {}
                where = reading.get("limit_path") if s.get("limit") else None
                groups.add(s["rss"], lim, where)
        for path, reading in rec.cg_now.items():
            n = reading.get("oom_kills")
            if n is not None:
                self.oom_by_cgroup[path] = max(self.oom_by_cgroup.get(path, 0), n)
        ooms = sum(self.oom_by_cgroup.values()) if self.oom_by_cgroup else None
        return build(self.counter.samples(), memory, limit, ooms, groups.share())


# ---------------------------------------------------------------------------
# The text format (node_exporter's textfile collector)


def _label_value(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v):
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 2**53):
        return str(int(v))
    return repr(float(v))


def text(families):
    """The families in Prometheus' text exposition format (0.0.4)."""
    lines = []
    for name, samples in families.items():
        kind, doc, _ = FAMILIES[name]
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {_number(value)}" if lab else f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


def check_textfile_dir(path):
    """None when ``path`` is a directory a file can be written in, else why not (a line)."""
    import tempfile

    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a directory"
        return f"--textfile {path} {what}"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kernel_wizard.", suffix=".tmp", dir=path)
    except OSError as exc:
        return f"cannot write in --textfile {path}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(tmp)
    return None


def write_textfile(directory, families, name=TEXTFILE_NAME):
    """Write ``directory/name`` atomically: a temporary file in the same directory,
    renamed over the old one (node_exporter never reads half a file). Raises OSError."""
    import tempfile

    data = text(families).encode()
    fd, tmp = tempfile.mkstemp(prefix=".kernel_wizard.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return os.path.join(directory, name)


class Textfile:
    """``python -m wizard watch --textfile DIR``: the families written after each sample."""

    def __init__(self, directory):
        self.directory = directory
        self.metrics = RecorderMetrics()

    def write(self, rec, new_deaths=()):
        """Update and write; None, or one line saying why the file could not be written."""
        fams = self.metrics.update(rec, new_deaths)
        try:
            write_textfile(self.directory, fams)
        except OSError as exc:
            return f"cannot write {os.path.join(self.directory, TEXTFILE_NAME)}: {exc}"
        return None
