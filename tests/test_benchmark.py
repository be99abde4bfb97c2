"""The benchmark the wizard page quotes runs, and reports every figure it promises."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_startup_benchmark_reports_its_ratios():
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_startup.py",
            "--runs",
            "1",
            "--kernels",
            "2",
            "--procs",
            "50",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "wizard with 2 live kernels (found 2)" in out, out
    assert re.search(r"worst wizard time / psutil baseline: \d+\.\d+ \(target <= 2\)", out)
    assert re.search(r"largest wizard peak RSS: \d+\.\d+ MiB \(target < 20\)", out)
    assert "jupyter troubleshoot / wizard" in out
