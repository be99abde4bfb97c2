"""A Jupyter server of the same user that the test suite must leave alone.

    python .ci/bystander.py start   # a server in the default runtime dir, one idle kernel
    python .ci/bystander.py check   # exit 1 unless that kernel still runs; then stop it
    python .ci/bystander.py stop    # stop it (idempotent)

The server runs with the user's default runtime directory, as a contributor's own
JupyterLab would, so every server and wizard the suite starts can see it.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# Where start leaves the server's pid, port and token for check and stop: .ci/run gives
# each run its own, so two runs side by side keep their bystanders apart.
STATE = Path(
    os.environ.get("BYSTANDER_STATE")
    or Path(tempfile.gettempdir()) / "kernel-wizard-bystander.json"
)


def api(state, method, path, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{state['port']}/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {state['token']}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def start():
    from jupyter_core.paths import jupyter_runtime_dir

    root = Path(tempfile.mkdtemp(prefix="bystander-"))
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_RUNTIME_DIR"}
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--IdentityProvider.token={token}",
        "--ServerApp.port=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(root / "server.log", "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    info = Path(jupyter_runtime_dir()) / f"jpserver-{proc.pid}.json"
    for _ in range(600):
        if info.exists():
            break
        if proc.poll() is not None:
            sys.exit(f"bystander: the server exited {proc.returncode}")
        time.sleep(0.1)
    state = {"pid": proc.pid, "port": json.loads(info.read_text())["port"], "token": token}
    kernel = api(state, "POST", "api/kernels", {"name": "python3"})
    state["kernel_id"] = kernel["id"]
    for _ in range(300):  # its process, a child of the server
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        if out.stdout.split():
            state["kernel_pid"] = int(out.stdout.split()[0])
            break
        time.sleep(0.1)
    STATE.write_text(json.dumps(state))
    print(f"bystander: server {proc.pid} in {info.parent}, kernel {state['kernel_id']}")


def stop(state):
    if alive(state["pid"]):
        os.kill(state["pid"], signal.SIGTERM)
        for _ in range(100):
            if not alive(state["pid"]):
                break
            time.sleep(0.1)
    if state.get("kernel_pid") and alive(state["kernel_pid"]):
        os.kill(state["kernel_pid"], signal.SIGKILL)
    STATE.unlink(missing_ok=True)


def check(state):
    ids = {k["id"] for k in api(state, "GET", "api/kernels")}
    ok = state["kernel_id"] in ids and alive(state.get("kernel_pid", 0))
    stop(state)
    if not ok:
        sys.exit("bystander: the suite shut down another server's idle kernel")
    print("bystander: its idle kernel is still running")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "start":
        start()
    elif what in ("check", "stop"):
        if not STATE.exists():
            sys.exit(0 if what == "stop" else "bystander: not started")
        (check if what == "check" else stop)(json.loads(STATE.read_text()))
    else:
        sys.exit("usage: bystander.py start|check|stop")
