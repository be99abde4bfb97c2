"""The recorder inside a Jupyter server: exact exit statuses, and sampling when no
``watch`` runs. ``load(serverapp)`` starts it once; ``current()`` is the running one.
See ``wizard.server_ext`` (the entry point Jupyter loads) for how to enable it.
"""

import os
import threading
import time

DEFAULT_INTERVAL = 2.0
LOCK_RETRY = 30.0  # seconds between tries to take over sampling from a `watch`

_hooked = False
_current = None  # the running Extension: hooks hand it what they see


# ---------------------------------------------------------------------------
# Hooks on the provisioner


def install_hooks():
    """Wrap LocalProvisioner's poll, wait, shutdown_requested, terminate and kill (once)."""
    global _hooked
    if _hooked:
        return
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    orig_poll = LocalProvisioner.poll
    orig_wait = LocalProvisioner.wait

    async def poll(self):
        proc = self.process
        ret = await orig_poll(self)
        if proc is not None and ret is not None:
            _seen(self, proc)
        return ret

    async def wait(self):
        proc = self.process
        ret = await orig_wait(self)
        if proc is not None and proc.returncode is not None:
            _seen(self, proc)
        return ret

    def asked(orig):
        async def wrapper(self, restart=False):
            _asked(self, "restart" if restart else "shutdown")
            return await orig(self, restart=restart)

        wrapper.__name__ = orig.__name__
        wrapper.__doc__ = orig.__doc__
        return wrapper

    poll.__doc__, wait.__doc__ = orig_poll.__doc__, orig_wait.__doc__
    LocalProvisioner.poll = poll
    LocalProvisioner.wait = wait
    for name in ("shutdown_requested", "terminate", "kill"):
        setattr(LocalProvisioner, name, asked(getattr(LocalProvisioner, name)))
    _hooked = True


def _asked(prov, kind):
    proc = getattr(prov, "process", None)
    if proc is None or getattr(proc, "_wizard_requested", None):
        return
    try:
        dead = proc.poll() is not None
    except OSError:
        dead = False
    if dead:
        _seen(prov, proc)  # it died before anyone asked: a crash, not a shutdown
    else:
        proc._wizard_requested = kind


def _seen(prov, proc):
    if getattr(proc, "_wizard_seen", False) or proc.returncode is None:
        return
    proc._wizard_seen = True
    ext = _current
    if ext is None:
        return
    obs = {
        "pid": proc.pid,
        "kernel_id": getattr(prov, "kernel_id", None),
        "returncode": proc.returncode,
        "time": time.time(),
        "requested": getattr(proc, "_wizard_requested", None),
        "notebook": None,
        "kernel_name": None,
    }
    km = getattr(prov, "parent", None)
    try:
        env = (getattr(km, "_launch_args", None) or {}).get("env") or {}
        obs["notebook"] = env.get("JPY_SESSION_NAME") or None
        obs["kernel_name"] = getattr(km, "kernel_name", None) or None
    except (AttributeError, TypeError):
        pass  # another kernel manager class: the recorder's own sample names it
    ext.put(obs)


# ---------------------------------------------------------------------------
# The recorder thread


class Extension:
    def __init__(self, db_path, interval, log):
        self.db_path = db_path
        self.interval = interval
        self.log = log
        self.exits = []
        self.mutex = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kernel-wizard-recorder", daemon=True)
        self.sampling = False
        self.said = set()

    def start(self):
        import atexit

        self.thread.start()
        atexit.register(self.stop)

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
        rec = recorder.Recorder(store, name="server", exact_for=os.getpid())
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
                    break
                self.wake.wait(self.interval)
                self.wake.clear()
        finally:
            lock.release()
            rec.klog.close()
            store.close()

    def _step(self, rec, sample=True):
        from wizard.server import metrics

        with self.mutex:
            exits, self.exits = self.exits, []
        try:
            rec.tick()
            for obs in exits:
                d = rec.note_exit(obs)
                metrics.deaths.record(d)
                self.log.info(
                    "wizard.server_ext: kernel %s (pid %s) ended: %s%s",
                    obs.get("kernel_id"),
                    obs.get("pid"),
                    d["cause"],
                    f" ({d['signal']})" if d.get("signal") else "",
                )
            if sample and self.sampling:
                rec.sample()
            for e in rec.errors:
                self._warn(e)
        except Exception as exc:  # keep recording; one line per kind of failure
            from wizard.base.failure import where as _where

            self._warn(f"recording failed: {type(exc).__name__} at {_where(exc)}: {exc}")


def current():
    """The running Extension, or None."""
    return _current


def load(serverapp):
    """Start the recorder, the REST API and the metrics; a failure is logged, never raised."""
    global _current
    log = serverapp.log
    try:
        conf = serverapp.config.get("KernelWizard", {})
        db = conf.get("db") or None
        interval = conf.get("interval") or os.environ.get("WIZARD_WATCH_INTERVAL")
        interval = float(interval) if interval else DEFAULT_INTERVAL
        if _current is None:
            from wizard.system import historydb

            ext = Extension(db or historydb.default_db_path(), max(interval, 0.05), log)
            install_hooks()
            ext.start()
            _current = ext
        from wizard.server import api

        api.setup_handlers(serverapp, _current.db_path)
    except Exception as exc:  # the server must start whatever happens here
        log.warning("wizard.server_ext: not started: %s: %s", type(exc).__name__, exc)
    try:  # kernel deaths and memory on the server's own /metrics
        from wizard.server import metrics

        metrics.install(serverapp, log)
    except Exception as exc:
        log.warning("wizard.server_ext: no metrics: %s: %s", type(exc).__name__, exc)
