"""Open kernels: every process whose command line names a kernel connection file.

Found with or without a Jupyter server. On Linux ``/proc`` is scanned raw (a cheap
bytes test on each ``cmdline`` first, so 2,000 processes cost a few tens of ms);
elsewhere psutil is used. Recognised command lines::

    python -m ipykernel_launcher -f .../kernel-<id>.json        (also --f=FILE)
    R --slave -e IRkernel::main() --args FILE
    julia -i --color=yes .../IJulia/src/kernel.jl FILE
    sage --python -m sage.repl.ipython_kernel -f FILE
    python -m ipykernel_launcher --f=.../kernel-v2-*.json      (VS Code)
    anything -f .../kernel-*.json

Each kernel's memory is its own resident set plus that of all its descendants
(leaving out descendants that are kernels themselves, so totals add up). The
kernel name and notebook come from the connection file (``kernel_name``,
``jupyter_session``), else from the ``JPY_SESSION_NAME`` environment variable. The
connection file's ``key`` is never kept; option values that look like tokens,
passwords or keys are hidden in ``cmdline``.
"""

import os
import sys

from wizard.system import procfs, userspace_oom
from wizard.system.jupyter_procs import SERVER_MODULES

CONN_MAX = 64 * 1024  # a connection file is ~300 bytes; anything bigger is garbage
CMDLINE_MAX = procfs.CMDLINE_MAX
ENVIRON_MAX = 256 * 1024
ARG_MAX_CHARS = 2000
ARGS_MAX = 200

# Programs that may name a kernel-*.json file without being a kernel.
_NOT_KERNELS = frozenset(
    "tail less more cat head vi vim nvim view nano emacs grep rg jq watch strace ltrace".split()  # noqa: SIM905
)
_SECRET_WORDS = ("token", "password", "passwd", "secret", "key")
# The name jupyter gives each family's kernelspec, used when nothing better is known.
_DEFAULT_NAMES = {"ipykernel": "python3", "ir": "ir", "julia": "julia", "sage": "sagemath"}


def probe(root, uid=None):
    """Kernels of ``uid`` (default: this user; root sees every user's)."""
    result = {"kernels": [], "scanned": 0, "denied": 0, "vanished": 0, "errors": []}
    result["daemons"] = []  # userspace OOM killers seen on the way (one /proc scan for both)
    if uid is None and hasattr(os, "geteuid") and os.geteuid() != 0:
        uid = os.geteuid()
    try:
        if _use_proc(root):
            _scan_proc(root, uid, result)
        else:
            _scan_psutil(root, uid, result)
    except Exception as e:  # a bug here must not hide the other checks: say it, go on
        result["errors"].append(f"kernel scan stopped: {type(e).__name__}: {e}")
    result["kernels"].sort(key=lambda k: -(k["rss_bytes"] or 0))
    return result


def _use_proc(root):
    if root.real and not sys.platform.startswith("linux"):
        return False
    return procfs.has_proc(root)


# ---------------------------------------------------------------------------
# Recognising a kernel from its argv


def recognise(argv):
    """``(family, connection_file)`` when ``argv`` is a kernel's, else None.

    family is "ipykernel", "ir", "julia", "sage" or "other".
    """
    if not argv:
        return None
    base0 = _basename(argv[0]).lower()
    if base0 in _NOT_KERNELS or base0 == "kernel-wizard":
        return None
    n = len(argv)
    module = None
    conn = None
    for i, a in enumerate(argv):
        if a == "-m" and i + 1 < n and module is None:
            module = argv[i + 1]
        elif a in ("-f", "--f") and i + 1 < n and conn is None:
            conn = argv[i + 1]
        elif a.startswith(("--f=", "-f=")) and conn is None:
            conn = a.split("=", 1)[1]
        elif a.startswith("--") and "=" in a and a.split("=", 1)[0].endswith("connection_file"):
            conn = conn or a.split("=", 1)[1]
    if module is not None:
        top = module.split(".")[0]
        if top == "wizard" or top in SERVER_MODULES:
            return None
    family = "other"
    if module and "sage.repl.ipython_kernel" in module:
        family = "sage"
    elif (module and ("ipykernel" in module or "ipython_kernel" in module)) or any(
        _basename(a) == "ipykernel_launcher.py" for a in argv[:4]
    ):
        family = "ipykernel"
    elif any("IRkernel::main" in a for a in argv):
        family = "ir"
        if "--args" in argv:
            i = argv.index("--args")
            if i + 1 < n:
                conn = argv[i + 1]
    elif base0.startswith("julia") and argv[-1].endswith(".json"):
        family = "julia"
        conn = argv[-1]
    if not conn:
        return None
    if family == "other" and not _is_kernel_file_name(conn):
        return None
    return family, conn


def _basename(p):
    return p.replace("\\", "/").rsplit("/", 1)[-1]


def _is_kernel_file_name(p):
    b = _basename(p)
    return b.startswith("kernel-") and b.endswith(".json")


def kernel_id_of(conn):
    """``<id>`` of ``.../kernel-<id>.json``, else None."""
    b = _basename(conn)
    if b.startswith("kernel-") and b.endswith(".json") and len(b) > 12:
        return b[7:-5]
    return None


def clean_cmdline(argv):
    """argv with option values that look like secrets hidden and long args cut."""
    out = []
    hide_next = False
    for a in argv[:ARGS_MAX]:
        if hide_next:
            out.append("<hidden>")
            hide_next = False
            continue
        if a.startswith("-"):
            name, eq, _ = a.partition("=")
            if any(w in name.lower() for w in _SECRET_WORDS):
                if eq:
                    a = name + "=<hidden>"
                else:
                    hide_next = True
        if len(a) > ARG_MAX_CHARS:
            a = a[:ARG_MAX_CHARS] + "..."
        out.append(a)
    if len(argv) > ARGS_MAX:
        out.append(f"... ({len(argv) - ARGS_MAX} more)")
    return out


# ---------------------------------------------------------------------------
# Connection file and environment


def read_connection_file(root, path):
    """``(kernel_name, notebook, error)`` from a connection file; never its key."""
    import json

    try:
        data = root.read_bytes(path, CONN_MAX + 1)
    except IsADirectoryError:
        return None, None, f"connection file {path} is a directory"
    except FileNotFoundError:
        return None, None, f"connection file {path} is missing"
    except PermissionError:
        return None, None, f"connection file {path}: permission denied"
    except OSError as e:
        return None, None, f"connection file {path}: {e.strerror or e}"
    if len(data) > CONN_MAX:
        return None, None, f"connection file {path} is too large (over {CONN_MAX // 1024} KiB)"
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, None, f"connection file {path} is not valid JSON"
    if not isinstance(info, dict):
        return None, None, f"connection file {path} is not a JSON object"
    name = info.get("kernel_name")
    session = info.get("jupyter_session")
    name = name if isinstance(name, str) and name else None
    session = session if isinstance(session, str) and session else None
    return name, session, None


def _session_from_environ(data):
    for item in data.split(b"\0"):
        if item.startswith(b"JPY_SESSION_NAME="):
            return item[17:].decode("utf-8", "replace") or None
    return None


def _resolve_conn(conn, pid, proc):
    if os.path.isabs(conn):
        return conn
    if proc is not None:
        # relative to the kernel's working directory, where ipykernel looks first
        try:
            return os.path.join(procfs.cwd(proc, pid), conn)
        except OSError:
            pass
    from wizard.system import jupyter_paths

    return os.path.join(jupyter_paths.runtime_dir(), conn)


def _new_kernel(pid, conn, argv, uid):
    return {
        "pid": pid,
        "kernel_id": kernel_id_of(conn),
        "connection_file": conn,
        "kernel_name": None,
        "notebook": None,
        "notebook_source": None,
        "rss_bytes": None,
        "children": 0,
        "started": None,
        "argv0": argv[0],
        "uid": uid,
        "cmdline": clean_cmdline(argv),
    }


def _fill_names(root, k, family, environ_reader, result):
    name, notebook, err = read_connection_file(root, k["connection_file"])
    k["kernel_name"] = name or _DEFAULT_NAMES.get(family)
    if notebook:
        k["notebook"], k["notebook_source"] = notebook, "connection-file"
    else:
        try:
            data = environ_reader()
        except PermissionError:
            result["denied"] += 1
            data = None
        except OSError:  # gone meanwhile: the rest of what we know still holds
            data = None
        notebook = _session_from_environ(data) if data else None
        if notebook:
            k["notebook"], k["notebook_source"] = notebook, "environ"
    if err:
        result["errors"].append(f"kernel pid {k['pid']}: {err}")


# ---------------------------------------------------------------------------
# Linux: raw /proc


def _scan_proc(root, uid, result):
    proc = procfs.proc_dir(root)
    try:
        names = procfs.list_pids(proc)
    except OSError as e:
        result["errors"].append(f"cannot list /proc: {e.strerror or e}")
        return
    me = os.getpid() if root.real else None
    found = []  # (pid, family, conn, argv)
    scanned = denied = vanished = 0
    for name in names:
        scanned += 1
        try:
            data = procfs.read_cmdline_raw(proc, name)
        except PermissionError:
            denied += 1
            continue
        except OSError:  # ENOENT, ESRCH: gone since listdir
            vanished += 1
            continue
        if b"oom" in data[:64]:
            daemon = userspace_oom.is_daemon(procfs.split_cmdline(data)[0])
            if daemon and daemon not in result["daemons"]:
                result["daemons"].append(daemon)
        if b".json" not in data and b"kernel" not in data:
            continue
        argv = procfs.split_cmdline(data)
        hit = recognise(argv)
        if hit is None:
            continue
        pid = int(name)
        if pid != me:
            found.append((pid, hit[0], hit[1], argv))
    result["scanned"], result["denied"], result["vanished"] = scanned, denied, vanished
    if not found:
        return

    tree = procfs.ProcTree(proc)
    btime = procfs.boot_time(root)
    clk = procfs.clock_ticks()
    page = procfs.page_size()
    conn_of = {pid: conn for pid, _, conn, _ in found}
    for pid, family, conn, argv in found:
        try:
            owner = procfs.owner(proc, pid)
            stat = procfs.read_stat(proc, pid)
        except PermissionError:
            result["denied"] += 1
            continue
        except OSError:
            result["vanished"] += 1
            continue
        if stat is None:
            result["vanished"] += 1
            continue
        if uid is not None and owner != uid:
            continue
        # A wrapper (conda run, a shell script) and the kernel it starts name the same
        # file: keep the outermost, whose tree holds both.
        if conn_of.get(stat.ppid) == conn:
            continue
        rss = procfs.statm_rss(proc, pid, page)
        if rss is None:
            result["vanished"] += 1
            continue
        k = _new_kernel(pid, _resolve_conn(conn, pid, proc), argv, owner)
        k["started"] = stat.started(btime, clk)
        # kernels below this one are listed on their own: not counted twice
        desc = tree.descendants(pid, {p for p, c in conn_of.items() if c != conn})
        k["children"] = len(desc)
        for d in desc:
            rss += procfs.statm_rss(proc, d, page) or 0
        k["rss_bytes"] = rss
        _fill_names(
            root, k, family, lambda p=pid: procfs.read_environ(proc, p, ENVIRON_MAX), result
        )
        result["kernels"].append(k)


# ---------------------------------------------------------------------------
# Elsewhere: psutil


def _scan_psutil(root, uid, result):
    try:
        import psutil
    except ImportError:
        result["errors"].append("psutil is not installed: pip install psutil")
        return
    me = os.getpid()
    found = []
    by_parent = {}  # one pass gives every process's parent: no children() per kernel
    procs = {}
    for p in psutil.process_iter(["cmdline", "ppid"]):
        result["scanned"] += 1
        procs[p.pid] = p
        if p.info.get("ppid") is not None:
            by_parent.setdefault(p.info["ppid"], []).append(p.pid)
        argv = p.info.get("cmdline")
        if argv is None:  # psutil puts None where access was denied
            result["denied"] += 1
            continue
        hit = recognise(argv) if argv and p.pid != me else None
        if hit is not None:
            found.append((p, hit[0], hit[1], argv))
    conn_of = {p.pid: conn for p, _, conn, _ in found}
    for p, family, conn, argv in found:
        try:
            with p.oneshot():
                owner = p.uids().real if hasattr(p, "uids") else None
                if uid is not None and owner is not None and owner != uid:
                    continue
                if conn_of.get(p.info.get("ppid")) == conn:
                    continue
                started = p.create_time()
                rss = p.memory_info().rss
        except psutil.AccessDenied:
            result["denied"] += 1
            continue
        except psutil.Error:  # NoSuchProcess, ZombieProcess
            result["vanished"] += 1
            continue
        k = _new_kernel(p.pid, _resolve_conn(conn, p.pid, None), argv, owner)
        k["started"] = started
        # below this kernel, leaving out other kernels and theirs (listed on their own)
        todo = list(by_parent.get(p.pid, []))
        while todo:
            c = todo.pop()
            if conn_of.get(c, conn) != conn or c not in procs:
                continue
            todo.extend(by_parent.get(c, []))
            try:
                rss += procs[c].memory_info().rss
                k["children"] += 1
            except psutil.Error:  # gone since the scan
                result["vanished"] += 1
        k["rss_bytes"] = rss
        _fill_names(root, k, family, lambda p=p: _environ_bytes(p), result)
        result["kernels"].append(k)


def _environ_bytes(p):
    import psutil

    try:
        env = p.environ()
    except psutil.AccessDenied:
        raise PermissionError("environ") from None
    except psutil.Error:
        return None
    value = env.get("JPY_SESSION_NAME")
    return f"JPY_SESSION_NAME={value}".encode() if value else None
