"""A real Jupyter server for tests, with notebooks and kernels driven through it.

``JupyterServer(base_dir)`` starts ``python -m jupyter_server`` on 127.0.0.1 with a
random token, HOME, runtime, data and config dirs all under ``base_dir``, and waits
for its ``jpserver-<pid>.json``. Use it as a context manager, or through the
fixtures:

- ``jupyter_server``: one running server per test module.
- ``jupyter_server_factory``: ``start(**kwargs)`` starts a fresh server (same
  arguments as ``JupyterServer``); every one is stopped at the end of the test.

Each needs jupyter_server, ipykernel and jupyter_client (``need()`` skips without
them, and fails under CI=true). Kernels are driven through the server's REST API
(``create_session``, ``kernels``, ``sessions``, ``delete_kernel``) and, to run code,
through jupyter_client with the kernel's connection file (``execute``).
Processes wizard code runs under are found with ``kernel_pid``.
"""

import contextlib
import http.client
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

__all__ = [
    "JupyterServer",
    "jupyter_server",
    "jupyter_server_factory",
    "need_jupyter",
    "wait_kernel_ready",
]

START_TIMEOUT = 60.0
READY_TIMEOUT = 180.0
EMPTY_NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def need_jupyter():
    """Skip (fail under CI) unless a Jupyter server and a Python kernel can run here."""
    from conftest import need

    for module in ("jupyter_server", "ipykernel", "jupyter_client", "psutil"):
        need(importlib.util.find_spec(module) is not None, f"{module} is not installed")


def _die_with_parent():
    # Linux: the server gets SIGTERM (and shuts its kernels down) if pytest dies.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: teardown still stops the server


def wait_kernel_ready(kc, timeout=READY_TIMEOUT):
    """Wait until the kernel behind client ``kc`` answers ``kernel_info`` on shell and IOPub.

    jupyter_client's ``wait_for_ready`` gives up as soon as a connection-file client
    misses the 1-second heartbeat, which a loaded machine does for a live kernel. Here
    only the kernel's own answers count: a ``kernel_info_reply`` to this request, and a
    message on IOPub (so output of the next request is not lost), within ``timeout``.
    """
    import queue

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg_id = kc.kernel_info()
        replied = False
        while not replied and time.monotonic() < end:
            try:
                msg = kc.get_shell_msg(timeout=min(5.0, max(0.1, end - time.monotonic())))
            except queue.Empty:
                break  # ask again: the first request may predate the connection
            replied = msg.get("parent_header", {}).get("msg_id") == msg_id
        if not replied:
            continue
        try:
            kc.get_iopub_msg(timeout=2.0)
        except queue.Empty:
            continue  # IOPub not subscribed yet: ask again
        while True:  # drain the rest of this request's IOPub messages
            try:
                kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                return
    raise RuntimeError(f"kernel did not answer kernel_info within {timeout} s")


class JupyterServer:
    """A jupyter_server process in its own temporary HOME.

    Attributes once started: ``pid``, ``port``, ``url`` (no token), ``token``,
    ``base`` / ``home`` / ``root_dir`` / ``runtime_dir`` / ``data_dir`` (Paths),
    ``info_file`` (the jpserver-<pid>.json), ``env`` (the server's environment, to
    run other processes, e.g. the wizard, as if beside it), ``log_path``.
    """

    def __init__(self, base_dir, token=None, python=None, extra_args=(), env=None):
        self.base = Path(base_dir)
        self.home = self.base / "home"
        self.root_dir = self.base / "notebooks"
        self.runtime_dir = self.base / "runtime"
        self.data_dir = self.base / "data"
        self.token = token or secrets.token_hex(24)
        self.python = python or sys.executable
        self.extra_args = list(extra_args)
        self.env = self._make_env(env)
        self.proc = None
        self.pid = None
        self.port = None
        self.url = None
        self.info_file = None
        self.log_path = self.base / "server.log"
        self._kernel_pids = set()

    def _make_env(self, extra):
        env = dict(os.environ)
        for k in ("JUPYTER_PATH", "JUPYTER_TOKEN", "JUPYTER_PLATFORM_DIRS", "JPY_SESSION_NAME"):
            env.pop(k, None)
        env.update(
            HOME=str(self.home),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_DATA_DIR=str(self.data_dir),
            JUPYTER_CONFIG_DIR=str(self.base / "config"),
            IPYTHONDIR=str(self.base / "ipython"),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra or {})
        return env

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=START_TIMEOUT):
        for d in (self.home, self.root_dir, self.runtime_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.python,
            "-m",
            "jupyter_server",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={self.root_dir}",
            *self.extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        if not self._enables_wizard():
            # Installing the package enables wizard.server_ext in every server of the
            # environment; a test server runs without it unless the test enables it.
            cmd.append('--ServerApp.jpserver_extensions={"wizard.server_ext": False}')
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                cwd=str(self.root_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self.pid = self.proc.pid
        self.info_file = self.runtime_dir / f"jpserver-{self.pid}.json"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter_server exited {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(self.info_file.read_text())
                self.port = info["port"]
                self.url = info["url"]
                if self.api("GET", "api/status", timeout=5) is not None:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jupyter_server did not start within {timeout} s:\n{self.log()}")

    def _enables_wizard(self):
        """Whether the test enables wizard.server_ext itself (argument or config file)."""
        if any("wizard.server_ext" in a for a in self.extra_args):
            return True
        config = self.base / "config"
        return config.is_dir() and any(
            "wizard.server_ext" in f.read_text(errors="replace")
            for f in config.rglob("*")
            if f.is_file()
        )

    def stop(self, timeout=15.0):
        """SIGTERM (the server shuts its kernels down), then SIGKILL what is left."""
        if self.proc is None:
            return
        import psutil

        with contextlib.suppress(psutil.Error):
            self._kernel_pids.update(
                c.pid for c in psutil.Process(self.pid).children(recursive=True)
            )
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in self._kernel_pids:  # only processes this server started
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- REST API ----------------------------------------------------------

    def api(self, method, path, body=None, timeout=30):
        """``method /path`` with the token; the parsed JSON answer (None for no body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"token {self.token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, "/" + path.lstrip("/"), body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def create_session(self, path, kernel="python3", name=None, type="notebook"):
        """Open ``path`` as JupyterLab does: a session whose kernel the server starts.

        The notebook (and its directory) is created empty under ``root_dir`` unless it
        exists. Returns the session model; ``session["kernel"]["id"]`` is the kernel
        id. The kernel's ``JPY_SESSION_NAME`` (and its connection file's
        ``jupyter_session``) is the notebook's absolute path.
        """
        nb = self.root_dir / path
        if type == "notebook" and not nb.exists():  # a notebook opened is one on disk
            nb.parent.mkdir(parents=True, exist_ok=True)
            nb.write_text(json.dumps(EMPTY_NOTEBOOK))
        body = {
            "path": path,
            "name": name if name is not None else os.path.basename(path),
            "type": type,
            "kernel": {"name": kernel},
        }
        session = self.api("POST", "api/sessions", body)
        self.kernel_pid(session["kernel"]["id"])  # remember it for teardown
        return session

    def kernels(self):
        return self.api("GET", "api/kernels")

    def sessions(self):
        return self.api("GET", "api/sessions")

    def delete_kernel(self, kernel_id):
        self.api("DELETE", f"api/kernels/{kernel_id}")

    # -- kernels as processes ------------------------------------------------

    def connection_file(self, kernel_id):
        return self.runtime_dir / f"kernel-{kernel_id}.json"

    def kernel_pid(self, kernel_id, timeout=20.0):
        """The pid of the server's child running kernel ``kernel_id``."""
        import psutil

        name = f"kernel-{kernel_id}.json"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for c in psutil.Process(self.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any(name in a for a in c.cmdline()):
                        self._kernel_pids.add(c.pid)
                        return c.pid
            time.sleep(0.1)
        raise RuntimeError(f"no process for kernel {kernel_id}:\n{self.log()}")

    def execute(self, kernel_id, code, timeout=60.0):
        """Run ``code`` in the kernel; ``{"status", "stdout", "error"}`` once it is done."""
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(connection_file=str(self.connection_file(kernel_id)))
        kc.load_connection_file()
        kc.start_channels()
        out = []

        def hook(msg):
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream":
                out.append(content.get("text", ""))

        try:
            wait_kernel_ready(kc)
            reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        finally:
            kc.stop_channels()
        content = reply["content"]
        error = None
        if content.get("status") != "ok":
            error = f"{content.get('ename')}: {content.get('evalue')}"
        return {"status": content.get("status"), "stdout": "".join(out), "error": error}


@pytest.fixture
def jupyter_server_factory(tmp_path_factory):
    """``start(**kwargs) -> JupyterServer`` (running); all are stopped at teardown."""
    need_jupyter()
    started = []

    def start(**kwargs):
        server = JupyterServer(tmp_path_factory.mktemp("jupyter"), **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory):
    """One running JupyterServer shared by the tests of a module."""
    need_jupyter()
    with JupyterServer(tmp_path_factory.mktemp("jupyter")) as server:
        yield server
