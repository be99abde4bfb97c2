"""The kernels probe: real processes that look like each kernel family, and /proc trees."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from wizard.probes import kernels
from wizard.system.sysroot import SysRoot

KEY = "5ec2e7-k3y-0f-th3-c0nn3ct10n-f1l3"
SLEEP = "import time; print('ready', flush=True); time.sleep(120)"
# A kernel whose child holds 64 MB; the parent says "ready" once the child has it.
HOG = (
    "import subprocess, sys, time\n"
    "code = 'x = bytearray(64 << 20)\\nfor i in range(0, len(x), 4096): x[i] = 1\\n"
    "print(1, flush=True)\\nimport time; time.sleep(120)'\n"
    "child = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE)\n"
    "child.stdout.readline()\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)
LINUX = sys.platform.startswith("linux") and os.path.isdir("/proc/self")


def conn_file(d, name, kernel_name="python3", session=None, **extra):
    info = {
        "shell_port": 50001,
        "iopub_port": 50002,
        "ip": "127.0.0.1",
        "key": KEY,
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "kernel_name": kernel_name,
        **extra,
    }
    if session is not None:
        info["jupyter_session"] = session
    path = d / name
    path.write_text(json.dumps(info))
    return str(path)


@pytest.fixture
def spawn(tmp_path):
    """spawn(argv0, *args, env=None): a sleeping Python whose command line ends in args."""
    procs = []
    real_python = os.path.realpath(sys.executable)

    def start(argv0, *args, env=None, code=SLEEP):
        if argv0 != sys.executable:
            link = tmp_path / "bin" / argv0
            link.parent.mkdir(exist_ok=True)
            if not link.exists():
                link.symlink_to(real_python)
            argv0 = str(link)
        p = subprocess.Popen(
            [argv0, "-c", code, *args],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        procs.append(p)
        assert p.stdout.readline() == b"ready\n"  # started: its memory no longer grows
        return p

    yield start
    for p in procs:
        for c in _children(p.pid):
            os.kill(c, 9)
        p.kill()
        p.wait()
        p.stdout.close()


def _children(pid):
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _wait_for(pids, check=lambda r: True, timeout=15.0, **kw):
    """Probe until every pid is listed (and check(result) holds)."""
    end = time.monotonic() + timeout
    while True:
        result = kernels.probe(SysRoot(), **kw)
        listed = {k["pid"]: k for k in result["kernels"]}
        if all(p in listed for p in pids) and check(result):
            return result, listed
        if time.monotonic() > end:
            raise AssertionError(f"kernels {pids} not all listed: {json.dumps(result)[:3000]}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# Real processes


@pytest.fixture
def need_linux():
    from conftest import need

    need(LINUX, "needs Linux /proc")


def test_each_kernel_family_is_recognised(tmp_path, spawn, need_linux):
    rt = tmp_path / "runtime"
    rt.mkdir()
    ipy = conn_file(rt, "kernel-aaa111.json", session="/home/u/a.ipynb")
    ir = conn_file(rt, "kernel-bbb222.json", kernel_name="ir", session="/home/u/r.ipynb")
    jl = conn_file(rt, "kernel-ccc333.json", kernel_name="julia-1.10")
    sage = conn_file(rt, "kernel-ddd444.json", kernel_name="sagemath-10.2")
    vsc = conn_file(rt, "kernel-v2-1234abcd.json", kernel_name="")
    gen = conn_file(rt, "kernel-eee555.json", kernel_name="mykernel")
    procs = {
        "ipykernel": spawn(sys.executable, "-m", "ipykernel_launcher", "-f", ipy),
        "ir": spawn("R", "--slave", "-e", "IRkernel::main()", "--args", ir),
        "julia": spawn("julia", "-i", "--color=yes", "/opt/IJulia/src/kernel.jl", jl),
        "sage": spawn("sage", "--python", "-m", "sage.repl.ipython_kernel", "-f", sage),
        "vscode": spawn(
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "--ip=127.0.0.1",
            "--stdin=9003",
            f"--Session.key=b'{KEY}'",
            f"--f={vsc}",
        ),
        "generic": spawn(sys.executable, "-f", gen),
    }
    not_kernels = [
        spawn(sys.executable, "-f", str(rt / "notes.json")),
        spawn("tail", "-f", ipy),
        spawn(sys.executable, "-m", "wizard", "-f", ipy),
        spawn(sys.executable, "-m", "jupyter_server", "--ServerApp.token=abc", "-f", gen),
    ]
    result, listed = _wait_for([p.pid for p in procs.values()])
    got = {fam: listed[p.pid] for fam, p in procs.items()}

    assert got["ipykernel"]["kernel_id"] == "aaa111"
    assert got["ipykernel"]["connection_file"] == ipy
    assert got["ipykernel"]["kernel_name"] == "python3"
    assert got["ipykernel"]["notebook"] == "/home/u/a.ipynb"
    assert got["ipykernel"]["notebook_source"] == "connection-file"
    assert (got["ir"]["kernel_id"], got["ir"]["notebook"]) == ("bbb222", "/home/u/r.ipynb")
    assert got["julia"]["connection_file"] == jl
    assert got["julia"]["kernel_name"] == "julia-1.10"
    assert got["julia"]["argv0"].endswith("/julia")
    assert got["sage"]["kernel_name"] == "sagemath-10.2"
    assert got["vscode"]["kernel_id"] == "v2-1234abcd"
    assert got["vscode"]["kernel_name"] == "python3"  # empty in the file: the family's name
    assert got["generic"]["kernel_name"] == "mykernel"
    for k in got.values():
        assert k["uid"] == os.getuid()
        assert k["rss_bytes"] > 1 << 20
        assert k["children"] == 0
        assert abs(k["started"] - _create_time(k["pid"])) < 1.0
    for p in not_kernels:
        assert p.pid not in listed
    assert result["scanned"] >= len(procs) + len(not_kernels)
    # the kernel's key (in the files, and on VS Code's command line) is nowhere
    assert KEY not in json.dumps(result)
    assert any(a.startswith("--Session.key=") for a in got["vscode"]["cmdline"])


def _create_time(pid):
    import psutil

    return psutil.Process(pid).create_time()


def test_memory_of_children_counts(tmp_path, spawn, need_linux):
    import psutil

    f = conn_file(tmp_path, "kernel-hog.json")
    p = spawn(sys.executable, "-m", "ipykernel_launcher", "-f", f, code=HOG)
    _, listed = _wait_for([p.pid])
    k = listed[p.pid]
    assert k["children"] == 1 and k["rss_bytes"] > 64 << 20
    procs = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
    expected = sum(x.memory_info().rss for x in procs)
    assert abs(k["rss_bytes"] - expected) < 0.05 * expected
    # sorted by memory: the hog comes before a small kernel
    g = conn_file(tmp_path, "kernel-small.json")
    small = spawn(sys.executable, "-f", g)
    result, _ = _wait_for([small.pid, p.pid])
    pids = [x["pid"] for x in result["kernels"]]
    assert pids.index(p.pid) < pids.index(small.pid)


def test_notebook_from_environ_and_uid_filter(tmp_path, spawn, need_linux):
    f = conn_file(tmp_path, "kernel-env1.json")  # no jupyter_session in it
    p = spawn(
        sys.executable, "-m", "ipykernel_launcher", "-f", f, env={"JPY_SESSION_NAME": "/w/e.ipynb"}
    )
    _, listed = _wait_for([p.pid])
    assert listed[p.pid]["notebook"] == "/w/e.ipynb"
    assert listed[p.pid]["notebook_source"] == "environ"
    other = kernels.probe(SysRoot(), uid=os.getuid() + 4242)
    assert p.pid not in {k["pid"] for k in other["kernels"]}
    mine = kernels.probe(SysRoot(), uid=os.getuid())
    assert p.pid in {k["pid"] for k in mine["kernels"]}


@pytest.mark.parametrize(
    "kind, message",
    [
        ("text", "is not valid JSON"),
        ("binary", "is not valid JSON"),
        ("huge", "is too large"),
        ("dir", "is a directory"),
        ("list", "is not a JSON object"),
        ("missing", "is missing"),
    ],
)
def test_garbage_connection_file(tmp_path, spawn, need_linux, kind, message):
    path = tmp_path / "kernel-garbage.json"
    if kind == "text":
        path.write_text("this is not { json")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "huge":
        path.write_text(json.dumps({"key": KEY, "pad": "x" * (kernels.CONN_MAX + 10)}))
    elif kind == "dir":
        path.mkdir()
    elif kind == "list":
        path.write_text(json.dumps([KEY]))
    p = spawn(sys.executable, "-m", "ipykernel_launcher", "-f", str(path))
    result, listed = _wait_for([p.pid])
    k = listed[p.pid]
    assert (k["kernel_id"], k["kernel_name"], k["notebook"]) == ("garbage", "python3", None)
    mine = [e for e in result["errors"] if f"pid {p.pid}:" in e]
    assert len(mine) == 1 and message in mine[0]
    assert KEY not in json.dumps(result)


def test_psutil_fallback_agrees(tmp_path, spawn, need_linux, monkeypatch):
    f = conn_file(tmp_path, "kernel-ps1.json", session="/x/p.ipynb")
    p = spawn(sys.executable, "-m", "ipykernel_launcher", "-f", f, code=HOG)
    _, fast = _wait_for([p.pid])
    # as on macOS or Windows, where there is no /proc
    monkeypatch.setattr(kernels, "_use_proc", lambda root: False)
    slow = {k["pid"]: k for k in kernels.probe(SysRoot())["kernels"]}
    assert p.pid in slow
    a, b = fast[p.pid], slow[p.pid]
    fields = ("kernel_id", "connection_file", "kernel_name", "notebook", "uid", "cmdline")
    for field in (*fields, "children"):
        assert a[field] == b[field], field
    assert abs(a["rss_bytes"] - b["rss_bytes"]) < 0.1 * a["rss_bytes"]
    assert abs(a["started"] - b["started"]) < 1.0

    monkeypatch.setitem(sys.modules, "psutil", None)
    none = kernels.probe(SysRoot())
    assert none["kernels"] == []
    assert none["errors"] == ["psutil is not installed: pip install psutil"]


def test_clean_cmdline_hides_secrets():
    argv = [
        "python",
        "-m",
        "ipykernel_launcher",
        "--ServerApp.token=tok1",
        "--IdentityProvider.token=tok2",
        "--token",
        "tok3",
        "--NotebookApp.password=sha1:pw",
        "--Session.key=b'k3y'",
        "-f",
        "/r/kernel-1.json",
        "x" * 5000,
    ]
    out = kernels.clean_cmdline(argv)
    text = " ".join(out)
    for secret in ("tok1", "tok2", "tok3", "sha1:pw", "k3y"):
        assert secret not in text
    assert out[:3] == ["python", "-m", "ipykernel_launcher"]
    assert "/r/kernel-1.json" in out
    assert len(out[-1]) < 2100


# ---------------------------------------------------------------------------
# /proc trees


class ProcTree:
    """A fake /proc under a temp dir."""

    def __init__(self, base, btime=1_700_000_000):
        self.base = base
        self.proc = base / "proc"
        self.proc.mkdir(parents=True)
        (self.proc / "stat").write_text(f"cpu  1 2 3\nbtime {btime}\nprocesses 5\n")
        self.run = base / "run"
        self.run.mkdir()

    def conn(self, name, **kw):
        """A connection file at /run/NAME inside the tree; its system path."""
        conn_file(self.run, name, **kw)
        return f"/run/{name}"

    def add(self, pid, argv, ppid=1, rss_pages=100, start=500, **kw):
        environ, children = kw.get("environ"), kw.get("children")
        comm, files = kw.get("comm", "python"), kw.get("files", ("cmdline", "stat", "statm"))
        d = self.proc / str(pid)
        d.mkdir()
        if "cmdline" in files:
            (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        if "stat" in files:
            rest = " ".join(["S", str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 10)
            (d / "stat").write_text(f"{pid} ({comm}) {rest}\n")
        if "statm" in files:
            (d / "statm").write_text(f"9999 {rss_pages} 50 1 0 80 0\n")
        if environ is not None:
            (d / "environ").write_bytes(b"\0".join(e.encode() for e in environ) + b"\0")
        if children is not None:  # {tid: [child pids]}
            for tid, kids in children.items():
                t = d / "task" / str(tid)
                t.mkdir(parents=True)
                (t / "children").write_text("".join(f"{k} " for k in kids))
        return d


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ipy(conn):
    return ["python", "-m", "ipykernel_launcher", "-f", conn]


def test_tree_children_ppid_map_and_nesting(tmp_path):
    t = ProcTree(tmp_path)
    a, b = t.conn("kernel-a.json"), t.conn("kernel-b.json")
    # no task/*/children files anywhere: the ppid map from stat is used
    t.add(100, _ipy(a), rss_pages=1000, start=250 * CLK, comm="a (weird) name")
    t.add(101, ["python", "-c", "work"], ppid=100, rss_pages=10)
    t.add(102, ["sh"], ppid=101, rss_pages=1)
    t.add(103, _ipy(b), ppid=100, rss_pages=500)  # a kernel started by a kernel
    t.add(104, ["cat"], ppid=103, rss_pages=7)
    result = kernels.probe(SysRoot(tmp_path), uid=os.getuid())
    got = {k["pid"]: k for k in result["kernels"]}
    assert set(got) == {100, 103}
    assert got[100]["rss_bytes"] == (1000 + 10 + 1) * PAGE
    assert got[100]["children"] == 2
    assert got[103]["rss_bytes"] == (500 + 7) * PAGE
    assert got[100]["started"] == 1_700_000_000 + 250
    assert [k["pid"] for k in result["kernels"]] == [100, 103]
    assert result["scanned"] == 5 and result["errors"] == []


def test_tree_children_files_threads_and_wrappers(tmp_path):
    t = ProcTree(tmp_path)
    a = t.conn("kernel-w.json", session="/n/w.ipynb")
    # conda-run style wrapper and the kernel it starts, both naming the same file;
    # the kernel's child was started from a second thread
    t.add(200, ["conda", "run", "-n", "e", *_ipy(a)], rss_pages=20, children={200: [201]})
    t.add(201, _ipy(a), ppid=200, rss_pages=300, children={201: [], 2011: [202]})
    t.add(202, ["python", "-c", "pass"], ppid=201, rss_pages=5, children={202: []})
    result = kernels.probe(SysRoot(tmp_path), uid=os.getuid())
    assert [k["pid"] for k in result["kernels"]] == [200]
    k = result["kernels"][0]
    assert k["rss_bytes"] == (20 + 300 + 5) * PAGE and k["children"] == 2
    assert (k["kernel_id"], k["notebook"]) == ("w", "/n/w.ipynb")


def test_tree_vanished_environ_and_setproctitle(tmp_path):
    t = ProcTree(tmp_path)
    t.add(300, [], files=())  # gone before its files were read
    t.add(301, _ipy("/run/kernel-gone.json"), files=("cmdline", "stat"))  # no statm
    t.add(302, _ipy("/run/kernel-nofile.json"), environ=["A=1", "JPY_SESSION_NAME=/e.ipynb"])
    t.add(303, ["python -m ipykernel_launcher -f /run/kernel-title.json"])  # one string
    t.add(304, ["bash"])
    result = kernels.probe(SysRoot(tmp_path), uid=os.getuid())
    got = {k["pid"]: k for k in result["kernels"]}
    assert set(got) == {302, 303}
    assert result["vanished"] == 2
    assert (got[302]["notebook"], got[302]["notebook_source"]) == ("/e.ipynb", "environ")
    assert got[303]["kernel_id"] == "title"
    assert got[303]["started"] == 1_700_000_000 + 500 / CLK
    assert sum("pid 302:" in e and "is missing" in e for e in result["errors"]) == 1


def test_tree_permission_denied(tmp_path, monkeypatch):
    t = ProcTree(tmp_path)
    t.add(400, _ipy(t.conn("kernel-x.json")))
    t.add(401, _ipy(t.conn("kernel-y.json")), environ=["JPY_SESSION_NAME=/s.ipynb"])
    os.chmod(t.proc / "400" / "cmdline", 0)
    os.chmod(t.proc / "401" / "environ", 0)
    if os.geteuid() == 0:  # root reads anything: make open() honour the mode bits
        real_open = os.open

        def dac_open(path, flags, *a, **kw):
            if stat.S_IMODE(os.stat(path).st_mode) & 0o444 == 0:
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, flags, *a, **kw)

        monkeypatch.setattr(os, "open", dac_open)
    result = kernels.probe(SysRoot(tmp_path), uid=os.getuid())
    assert [k["pid"] for k in result["kernels"]] == [401]
    assert result["kernels"][0]["notebook"] is None
    assert result["denied"] == 2


def test_recognise_rules():
    r = kernels.recognise
    assert r(["python", "-m", "ipykernel_launcher", "-f", "/r/kernel-1.json"]) == (
        "ipykernel",
        "/r/kernel-1.json",
    )
    assert r(["python", "-m", "ipykernel", "-f", "/r/conn.json"]) == ("ipykernel", "/r/conn.json")
    assert r(["python", "-f", "/r/conn.json"]) is None  # generic -f needs kernel-*.json
    assert r(["python", "--IPKernelApp.connection_file=/r/kernel-9.json"])[1] == "/r/kernel-9.json"
    assert r(["/usr/bin/julia", "-i", "kernel.jl", "/r/kernel-j.json"]) == (
        "julia",
        "/r/kernel-j.json",
    )
    assert r(["less", "/r/kernel-1.json"]) is None
    assert r(["python", "-m", "jupyter_server", "-f", "/r/kernel-1.json"]) is None
    assert r(["python", "-m", "wizard.commands.cli", "--f=/r/kernel-1.json"]) is None
    assert r([]) is None
