"""How fast and how small the wizard is, against baselines measured in the same run.

    python benchmarks/bench_startup.py [--runs N] [--kernels 20] [--procs 2000]
                                       [--scale-kernels 200] [--scale-procs 10000]

Each command runs N times; the median wall time and the largest peak RSS
(``ru_maxrss`` from ``wait4``) are reported. Baselines: ``python -c "import psutil"``
(the cost of merely loading the process library) and ``jupyter troubleshoot`` (the
nearest existing tool). Scenarios: this machine as it is, with K live kernels, and
with P extra processes to scan, and at scale: 200 light kernel processes (command
lines that name connection files, as kernels' do) among 10,000 other processes.
Targets: at most 2x the psutil baseline, under 20 MiB peak RSS, at least 5x faster
than ``jupyter troubleshoot``, and the full report at scale in at most 300 ms.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live_kernels import ENV, start_kernels, stop

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
WIZARD = [PY, "-m", "wizard", "--no-input"]


# GNU time reports the command's own peak RSS. wait4's ru_maxrss would also count the
# copy of this (larger) benchmark process that exists between fork and exec.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(cmd, runs, env=None):
    env = env or ENV
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    times, peaks = [], []
    with tempfile.NamedTemporaryFile("r") as report:
        wrapped = [GNU_TIME, "-f", "%M", "-o", report.name, *cmd] if GNU_TIME else cmd
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.Popen(
                wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO
            )
            _, _, usage = os.wait4(proc.pid, 0)
            times.append(time.perf_counter() - start)
            if GNU_TIME:
                report.seek(0)
                peaks.append(int(report.read().split()[-1]) * 1024)
            else:  # an upper bound, see above
                peaks.append(usage.ru_maxrss * 1024)
            proc.returncode = 0
    return {"seconds": statistics.median(times), "peak_bytes": max(peaks)}


def start_sleepers(n):
    return [
        subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(n)
    ]


def start_light_kernels(n, tmp):
    """``n`` processes whose command lines name connection files, with those files."""
    procs = []
    for i in range(n):
        conn = Path(tmp) / f"kernel-scale{i:04d}.json"
        conn.write_text(
            json.dumps({"kernel_name": "python3", "jupyter_session": f"{tmp}/bench-{i}.ipynb"})
        )
        # a shell that waits for its sleep: its own command line names the file, as a
        # kernel's does, and it has a child, as kernels usually have
        procs.append(
            subprocess.Popen(
                ["sh", "-c", "sleep 600; :", "kernel", "-f", str(conn)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # one group each: stopped with its sleep
            )
        )
    return procs


def count_kernels(tmp):
    """How many of this run's kernels (notebooks in ``tmp``) the wizard lists."""
    out = subprocess.run([*WIZARD, "--json"], capture_output=True, text=True, cwd=REPO, env=ENV)
    try:
        kernels = json.loads(out.stdout)["kernels"]
        paths = [k.get("notebook") or "" for k in kernels]
        return sum(1 for p in paths if p.startswith(f"{tmp}/bench-"))
    except (ValueError, KeyError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--kernels", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--scale-kernels", type=int, default=200)
    ap.add_argument("--scale-procs", type=int, default=10000)
    args = ap.parse_args()

    rows = []
    base = measure([PY, "-c", "import psutil"], args.runs)
    rows.append(("python -c 'import psutil' (baseline)", base))
    jupyter = shutil.which("jupyter", path=os.path.dirname(PY) + os.pathsep + os.environ["PATH"])
    trouble = measure([jupyter, "troubleshoot"], max(3, args.runs // 2)) if jupyter else None
    if trouble:
        rows.append(("jupyter troubleshoot (baseline)", trouble))

    results = {}
    results["idle"] = measure(WIZARD, args.runs)
    rows.append(("python -m wizard --no-input", results["idle"]))
    results["json"] = measure([*WIZARD, "--json"], args.runs)
    rows.append(("python -m wizard --no-input --json", results["json"]))

    with tempfile.TemporaryDirectory() as tmp:
        kernels = start_kernels(args.kernels, tmp)
        try:
            seen = count_kernels(tmp)
            results["kernels"] = measure(WIZARD, args.runs)
            rows.append(
                (f"wizard with {args.kernels} live kernels (found {seen})", results["kernels"])
            )
        finally:
            stop(kernels)
    sleepers = start_sleepers(args.procs)
    try:
        results["procs"] = measure(WIZARD, args.runs)
        rows.append((f"wizard with {args.procs} extra processes", results["procs"]))
    finally:
        stop(sleepers, grace=0)
    scale = None
    if args.scale_kernels or args.scale_procs:
        with tempfile.TemporaryDirectory() as tmp:
            crowd = start_light_kernels(args.scale_kernels, tmp)
            crowd += start_sleepers(args.scale_procs)
            try:
                seen = count_kernels(tmp)
                scale = measure(WIZARD, args.runs)
                rows.append(
                    (
                        f"at scale: {args.scale_kernels} kernels (found {seen}), "
                        f"{args.scale_procs} others",
                        scale,
                    )
                )
            finally:
                for p in crowd:
                    try:
                        os.killpg(p.pid, signal.SIGKILL) if p.args[0] == "sh" else p.kill()
                    except OSError:
                        pass  # gone already
                for p in crowd:
                    p.wait()

    print(
        f"{'command':<52} {'median':>9} {'peak RSS':>10} {'vs psutil':>10} {'troubleshoot/x':>15}"
    )
    for name, r in rows:
        ratio = r["seconds"] / base["seconds"]
        speedup = f"{trouble['seconds'] / r['seconds']:.1f}x" if trouble else "n/a"
        print(
            f"{name:<52} {r['seconds'] * 1000:>7.0f}ms {r['peak_bytes'] / 2**20:>8.1f}Mi"
            f" {ratio:>9.2f}x {speedup:>15}"
        )
    worst = max(results.values(), key=lambda r: r["seconds"])  # the machine's own scale
    biggest = max(r["peak_bytes"] for r in results.values())
    print()
    print(
        f"worst wizard time / psutil baseline: "
        f"{worst['seconds'] / base['seconds']:.2f} (target <= 2)"
    )
    print(f"largest wizard peak RSS: {biggest / 2**20:.1f} MiB (target < 20)")
    if scale:
        print(f"full report at scale: {scale['seconds'] * 1000:.0f} ms (target <= 300)")
    if trouble:
        print(
            f"jupyter troubleshoot / wizard (as the machine is): "
            f"{trouble['seconds'] / results['idle']['seconds']:.1f}x (target >= 5)"
        )


if __name__ == "__main__":
    main()
