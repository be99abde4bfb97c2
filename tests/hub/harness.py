"""A real JupyterHub for the tests: two Unix users, configurable-http-proxy, each user's
server in its own memory cgroup, the project installed in the users' environment.

``Hub(users)`` is a context manager. On entry it makes the users (root), a singleuser
environment (a venv of the system's Python with jupyterhub, jupyterlab and this
checkout installed, as the README says), and starts the hub from
tests/hub/jupyterhub_config.py on free loopback ports. On exit it stops the hub (which
stops the servers), ends whatever is left in the cgroups it made, removes them, the
users and their homes. Nothing else is touched.
"""

import contextlib
import http.client
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cgroups import own_memory_cgroup, remove, writable_memory_controller
from conftest import ROOT, need

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "jupyterhub_config.py"
VALUES = HERE / "z2jh-values.yaml"
PROMETHEUS_CONFIG = HERE / "prometheus.yml"
CHP_VERSION = "4"  # configurable-http-proxy's major version, from npm
CHP_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kernel-wizard"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=60.0, every=0.25):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = cond()
        except (OSError, AssertionError, KeyError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def need_hub():
    """Skip on a laptop without root, cgroup v1, jupyterhub or npm; fail under CI."""
    need(sys.platform.startswith("linux") and os.geteuid() == 0, "root on Linux (makes users)")
    need(writable_memory_controller(), "a writable cgroup v1 memory controller")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        need(False, "jupyterhub (pip install jupyterhub)")
    need(shutil.which("useradd") and shutil.which("userdel"), "useradd and userdel")
    proxy = shutil.which("configurable-http-proxy") or shutil.which("npm")
    need(proxy, "npm (apt-get install npm)")


def configurable_http_proxy():
    """The proxy: on PATH, else installed from npm into a local prefix once."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    prefix = CHP_CACHE / f"configurable-http-proxy-{CHP_VERSION}"
    exe = prefix / "node_modules" / ".bin" / "configurable-http-proxy"
    if not exe.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
             f"configurable-http-proxy@{CHP_VERSION}"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
    return str(exe)


def system_python():
    """A Python every user may run (the test's own may live under root's home)."""
    for p in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(p, os.X_OK):
            return p
    return sys.executable


def singleuser_env(base):
    """A venv the users' servers run from: jupyterhub (the hub's version), jupyterlab
    and this checkout, installed as the README says (``pip install .``); with uv
    (``uv pip install``, the same packages) when the test environment has it, which
    resolves and downloads in parallel: about a fifth of pip's time here."""
    import jupyterhub

    env = base / "singleuser-env"
    subprocess.run([system_python(), "-m", "venv", str(env)], check=True)
    python = str(env / "bin" / "python")
    wanted = [f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", str(ROOT)]
    if importlib.util.find_spec("uv") is not None:
        cmd = [sys.executable, "-m", "uv", "pip", "install", "--python", python, *wanted]
    else:
        cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", *wanted]
    log = base / "pip.log"
    with open(log, "wb") as out:
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=900
        )
    tail = log.read_text(errors="replace").splitlines()[-15:]
    assert done.returncode == 0, "installing the singleuser environment:\n" + "\n".join(tail)
    return env


class Hub:
    def __init__(self, users, password_length=20):
        self.users = list(users)
        self.password = secrets.token_urlsafe(password_length)
        self.tokens = {"prometheus": secrets.token_hex(32)}
        self.admin_token = secrets.token_hex(32)
        self.base = None
        self.proc = None
        self.made_users = []
        self.timings = {}

    # -- set up and tear down ----------------------------------------------------------

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self):
        t0 = time.monotonic()
        for name in self.users:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                need(False, f"user {name} exists already: the test makes its own")
        self.base = Path(tempfile.mkdtemp(prefix="kernel-wizard-hub-"))
        self.base.chmod(0o755)  # the users' servers run the venv inside it
        (self.base / "home").mkdir(mode=0o755)
        self.state = self.base / "hub"
        self.state.mkdir(mode=0o700)
        for name in self.users:
            subprocess.run(
                ["useradd", "--create-home", "--home-dir", str(self.base / "home" / name),
                 "--shell", "/bin/sh", "--user-group", name],
                check=True,
            )  # fmt: skip
            self.made_users.append(name)
        chp = configurable_http_proxy()
        self.timings["users and proxy"] = time.monotonic() - t0
        t1 = time.monotonic()
        self.env_dir = singleuser_env(self.base)
        self.timings["singleuser environment"] = time.monotonic() - t1
        _own, self.cgroup_parent = writable_memory_controller()
        self.cgroup_prefix = f"kernel-wizard-hub-{os.getpid()}"
        self.port = free_port()
        env = dict(
            os.environ,
            KW_HUB_STATE=str(self.state),
            KW_HUB_PROXY_PORT=str(self.port),
            KW_HUB_HUB_PORT=str(free_port()),
            KW_HUB_PROXY_API_PORT=str(free_port()),
            KW_HUB_CHP=chp,
            KW_HUB_PROXY_TOKEN=secrets.token_hex(32),
            KW_HUB_PASSWORD=self.password,
            KW_HUB_USERS=",".join(self.users),
            KW_HUB_ADMIN_TOKEN=self.admin_token,
            KW_HUB_CGROUP_PARENT=str(self.cgroup_parent),
            KW_HUB_CGROUP_PREFIX=self.cgroup_prefix,
            KW_HUB_SINGLEUSER=str(self.env_dir / "bin" / "jupyterhub-singleuser"),
        )
        env.pop("WIZARD_DB", None)  # each user's server records into that user's home
        for key, token in self.tokens.items():
            env[f"KW_HUB_TOKEN_{key.upper()}"] = token
        self.log_path = self.base / "jupyterhub.log"
        t2 = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
                cwd=self.state,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for("the hub to answer", self._up, timeout=90)
        self.timings["hub start"] = time.monotonic() - t2

    def _up(self):
        assert self.proc.poll() is None, self.log()
        return self.request("GET", "/hub/api/", token=self.admin_token)[0] == 200

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # stops the servers: cleanup_servers
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for cg in self.cgroups():
            self._kill_all(cg)
            remove(cg, self.cgroup_parent)
        for name in self.made_users:
            subprocess.run(["userdel", name], check=False, stderr=subprocess.DEVNULL)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)

    def cgroups(self):
        parent = getattr(self, "cgroup_parent", None)
        if parent is None:
            return []
        return sorted(parent.glob(f"{self.cgroup_prefix}-*"))

    @staticmethod
    def _kill_all(cg):
        """SIGKILL every process in the cgroup (only ever ours: the users' servers)."""
        with contextlib.suppress(OSError):
            for pid in (cg / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        wait_for("the cgroup to empty", lambda: not (cg / "cgroup.procs").read_text().split(), 20)

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:]

    # -- HTTP through the proxy ----------------------------------------------------------

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, token=None, body=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Authorization": f"token {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def api(self, method, path, token=None, body=None, ok=(200, 201, 202, 204)):
        status, text = self.request(method, path, token or self.admin_token, body)
        assert status in ok, (method, path, status, text[:500])
        return json.loads(text) if text.strip() else None

    # -- users and their servers -----------------------------------------------------

    def home(self, name):
        return Path(pwd.getpwnam(name).pw_dir)

    def put_file(self, name, relpath, text):
        """A file in the user's home, owned by the user."""
        p = self.home(name) / relpath
        p.write_text(text)
        u = pwd.getpwnam(name)
        os.chown(p, u.pw_uid, u.pw_gid)
        return p

    def user_token(self, name):
        """An API token of the user's own (the user's permissions, nobody else's)."""
        got = self.api("POST", f"/hub/api/users/{name}/tokens", body={"note": "test"})
        return got["token"]

    def start_server(self, name):
        self.api("POST", f"/hub/api/users/{name}/server")
        wait_for(f"{name}'s server", lambda: self._ready(name), timeout=150, every=0.5)

    def _ready(self, name):
        assert self.proc.poll() is None, self.log()
        model = self.api("GET", f"/hub/api/users/{name}")
        return (model.get("servers") or {}).get("", {}).get("ready")

    def server_cgroup(self, name, server="default"):
        return self.cgroup_parent / f"{self.cgroup_prefix}-{name}-{server}"

    def cgroup_path(self, name, server="default"):
        """The cgroup as /proc/PID/cgroup names it."""
        return own_memory_cgroup().rstrip("/") + "/" + self.server_cgroup(name, server).name

    def cgroup_pids(self, name, server="default"):
        return [
            int(p) for p in (self.server_cgroup(name, server) / "cgroup.procs").read_text().split()
        ]
