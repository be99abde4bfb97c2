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
            "--scale-kernels",
            "5",
            "--scale-procs",
            "20",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "wizard with 2 live kernels (found 2)" in out, out
    assert "at scale: 5 kernels (found 5), 20 others" in out, out
    assert re.search(r"full report at scale: \d+ ms \(target <= 300\)", out)
    assert re.search(r"worst wizard time / psutil baseline: \d+\.\d+ \(target <= 2\)", out)
    assert re.search(r"largest wizard peak RSS: \d+\.\d+ MiB \(target < 20\)", out)
    assert "jupyter troubleshoot / wizard" in out


def test_recorder_benchmark_reports_cpu_memory_and_the_death_it_saw():
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_watch.py", "--kernels", "2", "--seconds", "6"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    # 1 means "over budget": in so short a run start-up dominates. The figures are the point.
    assert done.returncode in (0, 1), done.stderr[-3000:]
    out = done.stdout
    assert "recorder with 2 kernels" in out, out
    assert re.search(r"CPU : \d+\.\d+% of one core \(target 1%", out)
    assert re.search(r"RSS : \d+\.\d+ MiB peak \(target 25 MiB", out)
    assert "death recorded: yes" in out
