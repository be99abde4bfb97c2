"""Real ipykernel processes for the benchmarks, started as a Jupyter server starts them."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Users' Pythons cache bytecode; a machine that forbids it would measure compiling instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def start_kernels(n, tmp, settle=3.0):
    """``n`` kernels with connection files in ``tmp``, notebooks ``tmp/bench-N.ipynb``.

    Waits until every connection file exists, then ``settle`` seconds more so that the
    kernels' own start-up is not counted against what is measured next.
    """
    files = [Path(tmp) / f"kernel-bench{i:04d}.json" for i in range(n)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(ENV, JPY_SESSION_NAME=f"{tmp}/bench-{i}.ipynb"),
        )
        for i, conn in enumerate(files)
    ]
    deadline = time.time() + 120
    while time.time() < deadline and not all(f.exists() for f in files):
        time.sleep(0.2)
    time.sleep(settle)
    return procs


def stop(procs, grace=10):
    """SIGTERM, then SIGKILL for what is still there after ``grace`` seconds."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
