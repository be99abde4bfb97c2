"""The recorder inside a Jupyter server: exact exit statuses, and sampling when no
``watch`` runs. ``load(serverapp)`` starts it once; ``current()`` is the running one.
See ``wizard.server_ext`` (the entry point Jupyter loads) for how to enable it.

It concerns this server's kernels only: the processes its kernel manager holds
(``own_kernels``), refreshed on the server's event loop every interval and at once
when ``provisioner.WizardProvisioner`` launches one. The recorder thread samples
those pids and nothing else; the ids it has seen are what ``/deaths`` answers about.
Each death is emitted on the server's event bus (``events``), on its event loop.

At start, in a thread of its own, it reads what the history tells of the previous
server in this home (``previous``: killed whole with its kernels?) with what this
process can read now (the kernel log, its cgroup's OOM-kill count), logs it once and
keeps it for ``GET /api/kernel-wizard/previous``.
"""

import os
import threading
import time

DEFAULT_INTERVAL = 2.0
LOCK_RETRY = 30.0  # seconds between tries to take over sampling from a `watch`

_current = None  # the running Extension: the provisioner hands it what it sees


# ---------------------------------------------------------------------------
# The recorder thread


class Extension:
    def __init__(self, db_path, interval, log, server_pid=None):
        self.db_path = db_path
        self.server_pid = server_pid or os.getpid()
        self.own_pids = {}  # pid -> kernel id: this server's kernel processes now
        self.own_ids = set()  # every kernel id this server has held since it started
        self.exact_pids = set()  # launched by WizardProvisioner: their ends come by put()
        self.on_death = None  # called on the recorder thread with each stored death
        self.interval = interval
        self.log = log
        self.exits = []
        self.mutex = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kernel-wizard-recorder", daemon=True)
        self.sampling = False
        self.said = set()
        self.started = time.time()  # the history before this is the previous server's
        self.previous = None  # previous.PreviousServer, once read
        self.previous_read = threading.Event()

    def start(self):
        import atexit

        self.thread.start()
        atexit.register(self.stop)

    def launched(self, prov):
        """A kernel this server's provisioner just started."""
        proc = getattr(prov, "process", None)
        with self.mutex:
            if proc is not None:
                self.own_pids[proc.pid] = prov.kernel_id
                self.exact_pids.add(proc.pid)
            if prov.kernel_id:
                self.own_ids.add(prov.kernel_id)

    def set_own(self, pids):
        """``{pid: kernel id}`` of the kernel manager's kernels, read on the event loop."""
        with self.mutex:
            self.own_pids = dict(pids)
            self.own_ids.update(k for k in pids.values() if k)

    def note_ids(self, ids):
        with self.mutex:
            self.own_ids.update(ids)

    def is_own(self, kernel_id):
        with self.mutex:
            return kernel_id in self.own_ids

    def _own_pids(self):
        with self.mutex:
            return set(self.own_pids)

    def put(self, obs):
        with self.mutex:
            self.exits.append(obs)
        self.wake.set()

    def stop(self, timeout=5.0):
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def _warn(self, text):
        if text not in self.said:
            self.said.add(text)
            self.log.warning("wizard.server_ext: %s", text)

    def _run(self):
        from wizard.engines import recorder
        from wizard.engines import store as store_mod
        from wizard.system import recorder_lock

        try:
            store = store_mod.Store(self.db_path, name="server")
        except Exception as exc:  # sqlite3.Error, OSError: say it once, record nothing
            self._warn(f"cannot open {self.db_path}: {type(exc).__name__}: {exc}")
            return
        rec = recorder.Recorder(
            store,
            name="server",
            exact_for=self.server_pid,
            servers=False,
            only_pids=self._own_pids,
        )
        lock = recorder_lock.Lock(self.db_path, where="inside a Jupyter server (wizard.server_ext)")
        next_try = 0.0
        self.log.info(
            "wizard.server_ext: recording kernel deaths into %s (every %g s)",
            self.db_path,
            self.interval,
        )
        try:
            while True:
                now = time.monotonic()
                if not self.sampling and now >= next_try:
                    next_try = now + LOCK_RETRY
                    try:
                        lock.acquire()
                        self.sampling = True
                    except recorder_lock.Busy:
                        pass  # a `watch` samples; this only adds exit statuses
                    except OSError as exc:
                        self._warn(f"cannot lock {lock.path}: {exc}")
                self._step(rec)
                if self.stopping.is_set():
                    self._step(rec, sample=False)  # exits queued while stopping
                    self._record_exit(store)
                    break
                self.wake.wait(self.interval)
                self.wake.clear()
        finally:
            lock.release()
            rec.klog.close()
            store.close()

    def _record_exit(self, store):
        """This process runs to its end (``stop`` runs at exit): say so, with the kernels
        still running. A server killed whole never gets here; one stopped by a SIGINT
        with no terminal (JupyterHub's local spawners stop servers so) gets here without
        having shut its kernels down, and they end after it, on their own."""
        from wizard.system import procfs
        from wizard.system.sysroot import SysRoot

        try:
            root = SysRoot()
            proc, btime, clk = procfs.proc_dir(root), procfs.boot_time(root), procfs.clock_ticks()
            left = []
            for pid in sorted(self._own_pids()):
                st = procfs.read_stat(proc, pid)
                if st is not None and not st.zombie:
                    left.append((pid, st.started(btime, clk)))
            store.record_server_exit(time.time(), self.server_pid, left)
        except Exception as exc:  # sqlite3.Error, OSError: the exit goes unrecorded
            self._warn(f"cannot record this server's exit: {type(exc).__name__}: {exc}")

    def _step(self, rec, sample=True):
        from wizard.server import metrics

        with self.mutex:
            exits, self.exits = self.exits, []
        try:
            rec.tick()
            stored = []
            for obs in exits:
                d = rec.note_exit(obs)
                stored.append(d)
                metrics.deaths.record(d)
                self.log.info(
                    "wizard.server_ext: kernel %s (pid %s) ended: %s%s",
                    obs.get("kernel_id"),
                    obs.get("pid"),
                    d["cause"],
                    f" ({d['signal']})" if d.get("signal") else "",
                )
            if sample and self.sampling:
                for d in rec.sample():
                    with self.mutex:
                        exact = d.get("pid") in self.exact_pids
                    if not exact and d.get("status_source") != "server":
                        metrics.deaths.record(d)  # a kernel of another provisioner
                        stored.append(d)
            if self.on_death is not None:
                for d in stored:
                    self.on_death(d)
            own = self._own_pids()
            for e in rec.errors:
                if _about_own(e, own):
                    self._warn(e)
        except Exception as exc:  # keep recording; one line per kind of failure
            from wizard.base.failure import where as _where

            self._warn(f"recording failed: {type(exc).__name__} at {_where(exc)}: {exc}")


def _about_own(error, own_pids):
    """Whether a recorder error concerns this server (not another process's kernel)."""
    words = str(error).split()
    if len(words) >= 3 and words[0] == "kernel" and words[1] == "pid":
        pid = words[2].rstrip(":")
        return pid.isdigit() and int(pid) in own_pids
    return True


def current():
    """The running Extension, or None."""
    return _current


def load(serverapp):
    """Start the recorder, the REST API, the events and the metrics; a failure is logged,
    never raised."""
    global _current
    log = serverapp.log
    from wizard.server import config

    conf = config.load(serverapp)
    try:
        if _current is None:
            from wizard.server import provisioner

            ext = Extension(conf.resolved_db(), conf.resolved_interval(), log)
            provisioner.set_sink(ext)
            provisioner.make_default(serverapp)
            threading.Thread(
                target=read_previous, args=(ext,), name="kernel-wizard-previous", daemon=True
            ).start()
            ext.start()
            _current = ext
        watch_own_kernels(serverapp, _current)
        from wizard.server import api, events

        events.install(serverapp, _current, conf)
        api.setup_handlers(serverapp, _current, conf)
    except Exception as exc:  # the server must start whatever happens here
        log.warning("wizard.server_ext: not started: %s: %s", type(exc).__name__, exc)
    try:  # the installed copy of the site, behind the server's login (none: no pages)
        from wizard.server import docs_site

        serverapp.web_app.add_handlers(".*$", docs_site.handlers(serverapp.base_url))
    except Exception as exc:
        log.warning("wizard.server_ext: no docs pages: %s: %s", type(exc).__name__, exc)
    if not conf.metrics:
        return
    try:  # kernel deaths and memory on the server's own /metrics
        from wizard.server import metrics

        metrics.install(serverapp, log)
    except Exception as exc:
        log.warning("wizard.server_ext: no metrics: %s: %s", type(exc).__name__, exc)


def read_previous(ext):
    """``ext.previous``: what the history says of the server before this one; logged once."""
    try:
        ext.previous = previous_from_here(ext.db_path, ext.started, os.getpid())
        text = ext.previous.message()
        if text:
            ext.log.warning("wizard.server_ext: %s", text)
    except Exception as exc:  # one line; the server runs on without it
        ext.log.warning(
            "wizard.server_ext: cannot read the previous server: %s: %s", type(exc).__name__, exc
        )
    finally:
        ext.previous_read.set()


def previous_from_here(db_path, started, server_pid):
    """``previous.previous_server`` with what this process reads now: the kernel log's OOM
    kills (when readable), its own memory cgroup and that cgroup's OOM-kill count, and
    which recorded kernels still run."""
    from wizard.engines.recorder import Cgroups
    from wizard.server.previous import previous_server
    from wizard.system import kernlog, procfs
    from wizard.system.sysroot import SysRoot

    root = SysRoot()
    found, _status = kernlog.oom_log(root)  # unreadable: no kill proved from it
    kills = [{"pid": k["pid"], "time": k.get("time")} for k in found]
    cgroup = oom_kills = None
    cgs = Cgroups(root)
    own = cgs.of_pid(server_pid)
    if own:
        reading = cgs.read(*own)
        if reading:
            cgroup, oom_kills = reading["path"], reading["oom_kills"]
    proc, btime, clk = procfs.proc_dir(root), procfs.boot_time(root), procfs.clock_ticks()

    def alive(pid, since):
        st = procfs.read_stat(proc, pid)
        if st is None or st.zombie:
            return False
        now = st.started(btime, clk)
        return now is None or since is None or abs(now - since) < 2  # not a reused pid

    return previous_server(db_path, started, kills, oom_kills, cgroup, alive)


def watch_own_kernels(serverapp, ext):
    """Every interval, on the server's event loop: the pids of its kernel manager's kernels."""
    from tornado.ioloop import PeriodicCallback

    from wizard.server import own_kernels

    def refresh():
        km = serverapp.kernel_manager
        pids = {}
        for kid in list(km.list_kernel_ids()):
            try:
                pid = own_kernels.kernel_pid(km.get_kernel(kid))
            except KeyError:
                continue
            ext.note_ids([kid])
            if pid:
                pids[pid] = kid
        ext.set_own(pids)

    cb = PeriodicCallback(refresh, max(ext.interval, 0.2) * 1000)

    def begin():
        refresh()
        cb.start()

    serverapp.io_loop.add_callback(begin)
    ext.refresher = cb
