"""``python -m wizard watch``, for real: a Jupyter server and its kernels in a child cgroup
with a small memory limit, one kernel OOM-killed, one shut down through the API; the
recorder's database after a SIGKILL mid-write; one recorder per database.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cgroups import remove, writable_memory_controller
from conftest import need

from wizard.diagnosis import deathtext
from wizard.system import historydb, recorder_lock

REPO = Path(__file__).resolve().parent.parent
LIMIT = 300 * 1024 * 1024
MiB = 1 << 20

HOG = "hog = []\nfor _ in range(150):\n    hog.append(b'x' * (10 << 20))\n"
SEGFAULT = "import ctypes; ctypes.string_at(0)"


def wizard_cmd(name):
    return [sys.executable, "-m", "wizard", name]


def wizard_env(extra=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1", PYTHONIOENCODING="utf-8")
    env.update(extra or {})
    return env


def start_watch(db, *args, env=None):
    return subprocess.Popen(
        [*wizard_cmd("watch"), "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=wizard_env(env),
        cwd=REPO,
    )


def wait_for_lock(db, proc, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = recorder_lock.recorder_status(str(db))
        if status["running"] and status["pid"] == proc.pid:
            return status
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("the recorder did not take its lock")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


# -- one recorder per database ----------------------------------------------------------


def test_a_second_recorder_names_the_running_one_and_exits_1(tmp_path):
    db = tmp_path / "history.sqlite3"
    first = start_watch(db, "--interval", "0.5")
    try:
        status = wait_for_lock(db, first)
        done = subprocess.run(
            [*wizard_cmd("watch"), "--once"],
            capture_output=True,
            text=True,
            env=wizard_env({"WIZARD_DB": str(db)}),
            timeout=60,
        )
        assert done.returncode == 1
        assert done.stdout == ""
        line = done.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["since"]))
        assert f"already running (pid {first.pid}, since {since}" in line
        assert str(db) in line
        assert first.poll() is None  # the first one is untouched
    finally:
        out = stop(first)
    assert first.returncode == 0, out
    assert "Stopped after" in out
    # the lock died with it: the next one starts
    done = subprocess.run(
        [*wizard_cmd("watch"), "--once", "--db", str(db)],
        capture_output=True,
        text=True,
        env=wizard_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_usage_errors_are_one_line(tmp_path):
    for args in (["--interval", "0"], ["--retention", "soon"], ["--bogus"]):
        done = subprocess.run(
            [*wizard_cmd("watch"), "--db", str(tmp_path / "h.sqlite3"), *args],
            capture_output=True,
            text=True,
            env=wizard_env(),
            timeout=60,
        )
        assert done.returncode == 2, args
        assert done.stderr.count("\n") == 1, done.stderr


# -- SIGKILL mid-write ------------------------------------------------------------------

WRITER = """\
import sys, time
from wizard.engines import recorder
from wizard.engines import store as store_mod
from wizard.system import recorder_lock
db = sys.argv[1]
recorder_lock.Lock(db, where="heavy writer").acquire()
store = store_mod.Store(db)
ks = [{"pid": 100000 + i, "started": float(i), "kernel_id": f"k{i}", "notebook": f"nb{i}.ipynb",
       "kernel_name": "python3", "cgroup": "/x", "first_seen": time.time()} for i in range(200)]
n = 0
while True:
    store.write(time.time(), [(k, n) for k in ks], [("/x", n, 1, 0)],
                [{"pid": 500000 + n, "kernel_id": "d", "returncode": -9,
                  "status_source": "zombie"}])
    n += 1
    print(n, flush=True)
"""


def test_database_survives_sigkill_mid_write_and_the_next_recorder_goes_on(tmp_path):
    import sqlite3

    db = tmp_path / "history.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=wizard_env(),
    )
    committed = 0
    try:
        while committed < 40:  # heavy writes: 200 samples, a cgroup row and a death each
            line = writer.stdout.readline()
            assert line, writer.stderr.read()
            committed = int(line)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    samples = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    died = conn.execute("SELECT count(*) FROM deaths").fetchone()[0]
    conn.close()
    # every transaction all or nothing, and none that was reported lost
    assert samples % 200 == 0 and samples // 200 == died
    assert died >= committed

    # The lock died with the writer: a real recorder starts on that database and writes.
    kernel = start_kernel(tmp_path)
    try:
        done = subprocess.run(
            [*wizard_cmd("watch"), "--db", str(db), "--interval", "0.2", "--duration", "1.5s"],
            capture_output=True,
            text=True,
            env=wizard_env(),
            timeout=60,
        )
    finally:
        kernel.kill()
        kernel.wait()
    assert done.returncode == 0, done.stdout + done.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute(
        "SELECT count(*) FROM samples s JOIN kernels k ON k.id = s.kernel WHERE k.pid = ?",
        (kernel.pid,),
    ).fetchone()[0]
    conn.close()
    assert rows >= 1


def start_kernel(tmp_path, name="solo.ipynb"):
    conn = tmp_path / "kernel-solo.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, JPY_SESSION_NAME=str(tmp_path / name)),
    )
    end = time.monotonic() + 30
    while not conn.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert conn.exists()
    return proc


# -- a real server in a cgroup ----------------------------------------------------------


class Scene:
    """A Jupyter server (optionally with extra arguments) in a child memory cgroup with a
    300 MB limit; ``open(name)`` starts a notebook's kernel, ``fire(name, code)`` runs code
    in it without waiting for an answer, ``deaths(db)`` reads what was recorded."""

    def __init__(self, tmp_path, extra_args=(), env=None):
        import jupyter_fixtures

        jupyter_fixtures.need_jupyter()
        found = writable_memory_controller()
        need(found, "needs root and a writable cgroup v1 memory controller")
        own, self.parent = found
        self.cg = self.parent / f"wizard-watch-{os.getpid()}-{time.monotonic_ns()}"
        self.path = own.rstrip("/") + "/" + self.cg.name
        self.server = jupyter_fixtures.JupyterServer(
            tmp_path / "server", extra_args=extra_args, env=wizard_env(env)
        )
        self.kernels = {}

    def __enter__(self):
        self.cg.mkdir()
        try:
            (self.cg / "memory.limit_in_bytes").write_text(str(LIMIT))
            if (self.cg / "memory.memsw.limit_in_bytes").exists():
                (self.cg / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
            self.server.start()
            # the server joins the cgroup before any kernel starts: they are born in it
            (self.cg / "cgroup.procs").write_text(str(self.server.pid))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.server.stop()
        finally:
            self._remove_cgroup()

    def _remove_cgroup(self):
        remove(self.cg, self.parent)

    def open(self, *names):
        for name in names:
            session = self.server.create_session(name)
            kid = session["kernel"]["id"]
            self.kernels[name] = {"id": kid, "pid": self.server.kernel_pid(kid)}
            # Under load a kill can come while the hog is still smaller than the server
            # (about 100 MB with its extension): the kernels go first, as the server's own
            # kernels would in a deployment that shields it (lowering needs a capability).
            _set_oom_score_adj(self.kernels[name]["pid"], 500)
        for name in names:
            self.client(name).stop_channels()  # ready: it answers
        return self.kernels

    def client(self, name):
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(
            connection_file=str(self.server.connection_file(self.kernels[name]["id"]))
        )
        kc.load_connection_file()
        kc.start_channels()
        import jupyter_fixtures

        jupyter_fixtures.wait_kernel_ready(kc)
        return kc

    def fire(self, name, code):
        kc = self.client(name)
        try:
            kc.execute(code)
            time.sleep(0.2)  # let the request leave before the channels close
        finally:
            kc.stop_channels()

    def in_cgroup(self, pid):
        return str(pid) in (self.cg / "cgroup.procs").read_text().split()


def _set_oom_score_adj(pid, value):
    with open(f"/proc/{pid}/oom_score_adj", "w") as f:
        f.write(str(value))


def wait_for_deaths(db, wanted, timeout=40.0):
    """Deaths recorded for the pids in ``wanted`` ({pid: predicate}) once all match."""
    end = time.monotonic() + timeout
    got = {}
    while time.monotonic() < end:
        got = {d["pid"]: d for d in historydb.recent_deaths(str(db), since_seconds=600)}
        if all(pid in got and ok(got[pid]) for pid, ok in wanted.items()):
            return got
        time.sleep(0.25)
    raise AssertionError(f"not recorded as expected: {[got.get(p) for p in wanted]}")


@pytest.mark.server
@pytest.mark.oom
def test_oom_kill_and_shutdown_recorded_by_watch(tmp_path):
    db = tmp_path / "history.sqlite3"
    with Scene(tmp_path) as scene:
        watch = start_watch(db, "--interval", "0.5", env=scene.server.env)
        try:
            wait_for_lock(db, watch)
            ks = scene.open("big.ipynb", "done.ipynb")
            assert scene.in_cgroup(ks["big.ipynb"]["pid"])
            time.sleep(1.2)  # a few samples of both
            scene.fire("big.ipynb", HOG)
            scene.server.delete_kernel(ks["done.ipynb"]["id"])
            big, done = ks["big.ipynb"]["pid"], ks["done.ipynb"]["pid"]
            got = wait_for_deaths(
                db, {big: lambda d: d["cause"] == "oom-kill", done: lambda d: True}
            )
            time.sleep(1.0)  # the shutdown is settled once the server was asked
            got = {d["pid"]: d for d in historydb.recent_deaths(str(db), since_seconds=600)}
        finally:
            out = stop(watch)
    assert watch.returncode == 0, out

    oom = got[big]
    assert oom["cause"] == "oom-kill" and oom["signal"] == "SIGKILL"
    assert oom["notebook"].endswith("/big.ipynb")
    assert oom["kernel_id"] == ks["big.ipynb"]["id"]
    assert oom["limit_bytes"] == LIMIT
    assert oom["cgroup"] == scene.path
    assert 150 * MiB < oom["rss_bytes"] <= LIMIT + 16 * MiB
    assert len(oom["samples"]) >= 2 and oom["samples"][-1] == oom["rss_bytes"]
    shut = got[done]
    assert shut["cause"] == "shutdown", shut
    assert shut["notebook"].endswith("/done.ipynb")
    assert deathtext.describe(shut).endswith("it was shut down on request, not a crash")
    assert f"died at {time.strftime('%H:%M', time.localtime(oom['time']))}" in out

    # What the user runs afterwards.
    report = subprocess.run(
        [*wizard_cmd("history"), "--json", "--since", "10m", "--db", str(db)],
        capture_output=True,
        text=True,
        env=wizard_env(),
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    by_pid = {d["pid"]: d for d in data["deaths"]}
    assert by_pid[big]["cause"] == "oom-kill" and by_pid[done]["cause"] == "shutdown"
    assert by_pid[big]["notebook"].endswith("/big.ipynb")
    text = subprocess.run(
        [*wizard_cmd("history"), "--since", "10m", "--db", str(db)],
        capture_output=True,
        text=True,
        env=wizard_env(),
        timeout=60,
    ).stdout
    assert f"big.ipynb's kernel (pid {big}) died at" in text
    assert "the OOM killer fired then" in text
    assert "of a 300 MiB limit" in text

    # The wizard itself, run later with no recorder running, leads with that death.
    env = wizard_env({"WIZARD_DB": str(db)})
    done = subprocess.run(
        [sys.executable, "-m", "wizard", "--json", "--no-input"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    first = report["findings"][0]
    assert first["id"] == "recorded-oom-kill", [f["id"] for f in report["findings"]]
    assert first["doc_label"] == "kernel-terminated-memory"
    assert f"(pid {big})" in first["message"] and "the OOM killer fired then" in first["message"]
    assert any(d["pid"] == big and d["cause"] == "oom-kill" for d in report["deaths"])
    shown = subprocess.run(
        [sys.executable, "-m", "wizard", "--no-input"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    ).stdout
    lines = shown.splitlines()
    deaths_line = next(i for i, line in enumerate(lines) if "Recorded deaths:" in line)
    assert f"big.ipynb's kernel (pid {big}) died at" in lines[deaths_line]
    assert "memory before it died:" in lines[deaths_line + 1]


# -- cgroups as the recorder reads them (fixture trees: v2 is not on this machine) ----------


def write_tree(base, files):
    for path, text in files.items():
        p = base / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_usage_limit_and_oom_count(tmp_path, version):
    from wizard.engines.recorder import Cgroups
    from wizard.system.sysroot import SysRoot

    if version == 2:
        mount = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
        base = "/sys/fs/cgroup"
        files = {
            "/proc/42/cgroup": "0::/user.slice/job/kernels\n",
            f"{base}/cgroup.controllers": "memory pids\n",
            f"{base}/user.slice/memory.max": "max\n",
            f"{base}/user.slice/job/memory.max": f"{2 << 30}\n",
            f"{base}/user.slice/job/kernels/memory.max": f"{4 << 30}\n",
            f"{base}/user.slice/job/kernels/memory.current": f"{1500 << 20}\n",
            f"{base}/user.slice/job/kernels/memory.stat": f"anon 1\ninactive_file {100 << 20}\n",
            f"{base}/user.slice/job/kernels/memory.events": "low 0\nhigh 0\nmax 9\noom 3\n"
            "oom_kill 2\n",
        }
    else:
        mount = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        base = "/sys/fs/cgroup/memory"
        files = {
            "/proc/42/cgroup": "9:pids:/x\n4:memory:/user.slice/job/kernels\n1:cpu:/\n",
            f"{base}/memory.limit_in_bytes": "9223372036854771712\n",
            f"{base}/user.slice/job/memory.limit_in_bytes": f"{2 << 30}\n",
            f"{base}/user.slice/job/kernels/memory.limit_in_bytes": "9223372036854771712\n",
            f"{base}/user.slice/job/kernels/memory.usage_in_bytes": f"{1500 << 20}\n",
            f"{base}/user.slice/job/kernels/memory.stat": "cache 1\n"
            f"total_inactive_file {100 << 20}\nhierarchical_memory_limit {2 << 30}\n",
            f"{base}/user.slice/job/kernels/memory.oom_control": "oom_kill_disable 0\n"
            "under_oom 0\noom_kill 2\n",
        }
    write_tree(tmp_path, {"/proc/self/mountinfo": mount, **files})
    cg = Cgroups(SysRoot(str(tmp_path)))
    found = cg.of_pid(42)
    assert found == (version, "/user.slice/job/kernels")
    got = cg.read(*found)
    assert got["usage_bytes"] == 1400 << 20  # the working set: inactive file cache left out
    assert got["limit_bytes"] == 2 << 30
    assert got["limit_path"].endswith("/user.slice/job")
    assert got["oom_kills"] == 2
    assert cg.of_pid(43) is None  # gone
