"""Running Jupyter servers, from the info files they leave in the runtime dir.

``jpserver-<pid>.json`` (jupyter_server) and ``nbserver-<pid>.json`` (classic
notebook) are read directly: jupyter_server's own listing deletes the files of
dead servers, and nothing here deletes or changes anything. A server whose pid is
alive is asked ``GET /api/status``, ``/api/kernels`` and ``/api/sessions`` with
its token, and only when it listens on this machine's loopback interface (or a
unix socket): the token is never sent anywhere else. All requests to all servers
share one deadline, so servers that accept connections and never answer cost
``timeout_total`` seconds in all (each alive server gets a fair share of the time
left). Tokens and passwords never appear in the result.

``fallback`` says how to start a plain server to compare with the usual interface.
"""

import os
import sys

from wizard.system import procfs
from wizard.system.jupyter_procs import may_be_server

INFO_MAX = 64 * 1024
RESPONSE_MAX = 8 << 20
_WILDCARD = ("", "0.0.0.0", "::", "*", "localhost")
# (module, executable, command): a notebook interface first, to open a notebook in
_PLAIN = (
    ("notebook", "jupyter-notebook", "jupyter notebook"),
    ("jupyterlab", "jupyter-lab", "jupyter lab"),
    ("jupyter_server", "jupyter-server", "jupyter server --no-browser"),
)


def probe(root, timeout_total=1.0):
    import time

    from wizard.system import jupyter_paths

    deadline = time.monotonic() + timeout_total
    runtime = jupyter_paths.runtime_dir()
    result = {"runtime_dir": runtime, "servers": [], "fallback": None, "errors": []}
    try:
        names = root.listdir(runtime)
    except FileNotFoundError:
        names = []  # no server has run as this user
    except OSError as e:
        result["errors"].append(f"cannot list the runtime dir {runtime}: {e.strerror or e}")
        result["unlisted"] = f"{runtime}: {e.strerror or e}"  # servers may run, unseen
        names = []
    infos = []
    for name in sorted(names):
        if not (name.startswith(("jpserver-", "nbserver-")) and name.endswith(".json")):
            continue
        path = os.path.join(runtime, name)
        info, err = read_info(root, path)
        if err:
            result["errors"].append(err)
            continue
        server, secrets = _describe(root, path, name, info)
        result["servers"].append(server)
        infos.append((server, info, secrets))
    # Each server gets a fair share of the time left, so one that hangs cannot hide
    # the others; what a fast one leaves goes to the next.
    alive = [x for x in infos if x[0]["alive"]]
    for i, (server, info, secrets) in enumerate(alive):
        now = time.monotonic()
        share = now + (deadline - now) / (len(alive) - i)
        _ask(server, info, secrets, share, timeout_total)
    result["fallback"] = fallback()
    return result


def read_info(root, path):
    import json

    try:
        data = root.read_bytes(path, INFO_MAX + 1)
    except IsADirectoryError:
        return None, f"server file {path} is a directory"
    except OSError as e:
        return None, f"cannot read server file {path}: {e.strerror or e}"
    if len(data) > INFO_MAX:
        return None, f"server file {path} is too large to be a server's info file"
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, f"server file {path} is not valid JSON"
    if not isinstance(info, dict):
        return None, f"server file {path} is not a JSON object"
    return info, None


def _str(v):
    return v if isinstance(v, str) else None


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _describe(root, path, name, info):
    secrets = [s for s in (info.get("token"), info.get("password")) if isinstance(s, str) and s]
    pid = _int(info.get("pid"))
    if pid is None:
        digits = name.split("-", 1)[1][:-5]
        pid = int(digits) if digits.isdigit() else None
    url = _str(info.get("url"))
    if url is None and _int(info.get("port")):
        scheme = "https" if info.get("secure") else "http"
        host = _str(info.get("hostname")) or "localhost"
        url = f"{scheme}://{host}:{info['port']}{_str(info.get('base_url')) or '/'}"
    url = scrub(url.split("?", 1)[0].split("#", 1)[0], secrets) if url else None
    server = {
        "pid": pid,
        "file": path,
        "url": url,
        "alive": False,
        "reachable": None,
        "version": _str(info.get("version")),
        "root_dir": _str(info.get("root_dir")) or _str(info.get("notebook_dir")),
        "error": None,
        "kernels": [],
        "sessions": [],
    }
    server["alive"], server["error"] = _alive(root, pid)
    return server, secrets


def scrub(text, secrets):
    """``text`` with every secret replaced by ``<hidden>``."""
    for s in secrets:
        text = text.replace(s, "<hidden>")
    return text


def _alive(root, pid):
    """``(alive, error)``: does the server's process exist (and is it still a server)?"""
    if pid is None or pid <= 0:
        return False, "the file names no process id"
    use_proc = sys.platform.startswith("linux") if root.real else procfs.has_proc(root)
    if use_proc:
        proc = procfs.proc_dir(root)
        try:
            data = procfs.read_cmdline_raw(proc, pid)
        except FileNotFoundError:
            return False, None
        except OSError:
            return procfs.exists(proc, pid), None
        if not data:  # a zombie, or a kernel thread
            stat = procfs.read_stat(proc, pid)
            return stat is not None and not stat.zombie, None
        if not may_be_server(procfs.split_cmdline(data)):
            return False, f"process {pid} is no longer a Jupyter server: the file is stale"
        return True, None
    if os.name == "nt":
        try:
            import psutil
        except ImportError:
            return True, None  # cannot tell: let the request decide
        return psutil.pid_exists(pid), None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:  # exists, belongs to someone else
        return True, None
    except OSError as e:
        return False, f"cannot check process {pid}: {e.strerror or e}"
    return True, None


# ---------------------------------------------------------------------------
# Asking a server


def is_loopback(host):
    host = (host or "").strip("[]").lower()
    if host in ("localhost", "::1", "0:0:0:0:0:0:0:1") or host.endswith(".localhost"):
        return True
    if host.startswith("::ffff:"):
        host = host[7:]
    parts = host.split(".")
    return (
        len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts) and parts[0] == "127"
    )


def request_targets(info, url):
    """Where to connect: [(host, port)] or [("unix", path)]; None when not loopback."""
    sock = _str(info.get("sock"))
    if sock:
        return [("unix", sock)]
    host = _str(info.get("hostname"))
    port = _int(info.get("port"))
    if host is None or port is None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url or "")
            host = parts.hostname if host is None else host
            port = parts.port if port is None else port
        except ValueError:
            return []
    if not port:
        return []
    host = (host or "").strip("[]")
    if host in _WILDCARD:
        return [("127.0.0.1", port), ("::1", port)]
    if host.startswith("::") and host.lower() != "::1":
        return [("::1", port)]
    if is_loopback(host):
        return [(host, port)]
    return None


def _ask(server, info, secrets, deadline, timeout_total):
    """Ask one server, all its requests done by ``deadline`` (time.monotonic())."""
    import time

    budget = max(deadline - time.monotonic(), 0.0)

    targets = request_targets(info, server["url"])
    if targets is None:
        server["error"] = (
            "not asked: the server listens on another host, and its token is only sent to "
            "this machine's loopback address"
        )
        return
    if not targets:
        server["error"] = "not asked: the file names no port or socket"
        return
    token = _str(info.get("token")) or ""
    base = _str(info.get("base_url")) or "/"
    base = base if base.endswith("/") else base + "/"
    secure = bool(info.get("secure"))
    errors = []
    for host, port in targets:
        if deadline - time.monotonic() <= 0:
            errors.append(f"not asked: the {timeout_total:g} s for server checks ran out")
            break
        state, err = _ask_one(server, host, port, secure, base, token, deadline, budget)
        if state:
            server["reachable"], server["error"] = True, scrub(err, secrets) if err else None
            return
        server["reachable"] = False
        errors.append(scrub(err, secrets))
    server["error"] = "; ".join(errors) or None


def connection(host, port, secure, timeout):
    import http.client

    if host == "unix":
        import socket

        class UnixHTTPConnection(http.client.HTTPConnection):
            def connect(self):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self.timeout)
                try:
                    s.connect(port)
                except OSError:
                    s.close()
                    raise
                self.sock = s

        return UnixHTTPConnection("localhost", timeout=timeout)
    if secure:
        import ssl

        # a loopback server with a self-signed certificate: nothing to verify it against
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _ask_one(server, host, port, secure, base, token, deadline, budget):
    """``(reachable, error)``; fills the server's kernels and sessions."""
    import http.client
    import json
    import time

    where = port if host == "unix" else f"{host}:{port}"
    headers = {"Authorization": f"token {token}"} if token else {}
    conn = connection(host, port, secure, max(deadline - time.monotonic(), 0.001))
    answered = False
    try:
        got = {}
        for what in ("status", "kernels", "sessions"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            conn.timeout = left
            if conn.sock is not None:
                conn.sock.settimeout(left)
            conn.request("GET", f"{base}api/{what}", headers=headers)
            resp = conn.getresponse()
            body = resp.read(RESPONSE_MAX)
            answered = True
            if resp.status in (401, 403) and not token:  # a password only: nothing to send
                server["needs_password"] = True
                return (
                    True,
                    f"it needs a password, which the wizard does not have (HTTP {resp.status})",
                )
            if resp.status in (401, 403):
                return True, f"the server refused its own token (HTTP {resp.status})"
            if resp.status != 200:
                return True, f"GET /api/{what} answered HTTP {resp.status}"
            try:
                got[what] = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return True, f"GET /api/{what} did not answer JSON: not a Jupyter server?"
    except ConnectionRefusedError:
        return False, f"connection refused on {where}"
    except (TimeoutError, OSError) as e:
        if isinstance(e, TimeoutError) or "timed out" in str(e):
            if answered:
                return True, f"no full answer within {budget:.2g} s"
            return False, f"no answer on {where} within {budget:.2g} s"
        return False, f"cannot connect to {where}: {e.strerror or e}"
    except http.client.HTTPException as e:
        return False, f"{where} does not speak HTTP as a Jupyter server does ({type(e).__name__})"
    finally:
        conn.close()
    server["kernels"] = _kernels(got.get("kernels"))
    server["sessions"] = _sessions(got.get("sessions"))
    return True, None


def _kernels(data):
    out = []
    for k in data if isinstance(data, list) else []:
        if isinstance(k, dict) and _str(k.get("id")):
            out.append(
                {
                    "id": k["id"],
                    "name": _str(k.get("name")),
                    "execution_state": _str(k.get("execution_state")),
                    "last_activity": _str(k.get("last_activity")),
                    "connections": _int(k.get("connections")),
                }
            )
    return out


def _sessions(data):
    out = []
    for s in data if isinstance(data, list) else []:
        if not isinstance(s, dict):
            continue
        kernel = s.get("kernel") if isinstance(s.get("kernel"), dict) else {}
        nb = s.get("notebook") if isinstance(s.get("notebook"), dict) else {}
        out.append(
            {
                "path": _str(s.get("path")) or _str(nb.get("path")),
                "kernel_id": _str(kernel.get("id")),
                "name": _str(s.get("name")) or _str(nb.get("name")),
                "type": _str(s.get("type")) or ("notebook" if nb else None),
            }
        )
    return out


# ---------------------------------------------------------------------------
# Fallback and merge


def fallback():
    """Whether this is CoCalc, which servers are installed, and the command to start one."""
    import importlib.util
    import shutil

    installed = []
    command = None
    for module, exe, cmd in _PLAIN:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found or shutil.which(exe):
            installed.append(module)
            command = command or cmd
    order = ["jupyter_server", "notebook", "jupyterlab"]
    installed.sort(key=order.index)
    return {
        "cocalc": bool(os.environ.get("COCALC_PROJECT_ID")),
        "installed": installed,
        "command": command,
    }


def merge(kernels_result, servers_result):
    """Add what the servers know to the kernels found as processes; returns kernels_result.

    Fills ``execution_state``, ``last_activity`` and ``server_pid`` (None when no
    server knows the kernel), and ``notebook`` (``notebook_source: "server"``) when the
    connection file and environment named none. Kernels a server lists without a
    process here are not added.
    """
    known = {}
    for s in (servers_result or {}).get("servers") or []:
        by_kernel = {x["kernel_id"]: x for x in s.get("sessions") or [] if x.get("kernel_id")}
        for k in s.get("kernels") or []:
            if k.get("id") and k["id"] not in known:
                known[k["id"]] = (s, k, by_kernel.get(k["id"]))
        for kid, sess in by_kernel.items():
            if kid not in known:
                known[kid] = (s, None, sess)
    for k in (kernels_result or {}).get("kernels") or []:
        k.setdefault("execution_state", None)
        k.setdefault("last_activity", None)
        k.setdefault("server_pid", None)
        hit = known.get(k.get("kernel_id"))
        if hit is None:
            continue
        server, sk, session = hit
        k["server_pid"] = server.get("pid")
        if sk:
            k["execution_state"] = sk.get("execution_state")
            k["last_activity"] = sk.get("last_activity")
            k["kernel_name"] = sk.get("name") or k.get("kernel_name")
        if session and session.get("path") and not k.get("notebook"):
            k["notebook"] = session["path"]
            k["notebook_source"] = "server"
    return kernels_result
