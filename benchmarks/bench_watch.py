"""What the recorder costs: CPU and peak RSS of ``python -m wizard watch`` with K kernels.

    python benchmarks/bench_watch.py [--kernels 20] [--seconds 45] [--interval 2] [--json]

Starts K real kernels (``python -m ipykernel_launcher -f <tmp>/kernel-N.json``, each
with a notebook name in ``JPY_SESSION_NAME``, as a server starts them), lets them
settle, then runs the recorder for the given time with a fresh database. Its CPU
time (user + system) comes from ``wait4`` and ``/proc``, its peak RSS from ``/proc``;
one kernel is killed halfway so that a death is recorded too. Figures: CPU share of
one core (all of it, and once running), milliseconds per sample, peak RSS (VmHWM).
Targets: at most 1% of one core and 25 MiB peak RSS with 20 kernels.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live_kernels import ENV, start_kernels, stop

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
CPU_TARGET = 0.01  # share of one core
RSS_TARGET = 25 << 20


def watch_command():
    """``python -m wizard watch``."""
    return [PY, "-m", "wizard", "watch"]


def proc_figures(pid):
    """``(cpu seconds, VmHWM bytes)`` of a live process from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmHWM:"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), hwm


def run_recorder(db, seconds, interval, victim):
    """Run the recorder; its CPU time and peak RSS.

    CPU: user + system from wait4 (all of it, start-up included) and, for the steady
    state, from /proc/PID/stat between the end of the first sample and the last reading.
    Peak RSS: /proc/PID/status VmHWM (the process's own high-water mark), read every
    half second; wait4's ru_maxrss would also count the copy of this benchmark process
    that exists between fork and exec.
    """
    env = dict(ENV, PYTHONPATH=str(REPO), WIZARD_DB=str(db))
    cmd = [*watch_command(), "--interval", str(interval), "--duration", f"{seconds}s"]
    subprocess.run([*watch_command(), "--help"], env=env, capture_output=True)  # bytecode
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = last = None
    killed = victim is None
    while proc.poll() is None:
        time.sleep(0.5)
        now = time.monotonic()
        fig = proc_figures(proc.pid)
        if fig is None:
            break
        if first is None and now - start >= interval + 1:
            first = (now, fig[0])
        last = (now, fig[0], fig[1])
        if not killed and now - start >= seconds / 2:
            victim.send_signal(signal.SIGKILL)
            killed = True
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    output = proc.stdout.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    steady = None
    if first and last and last[0] > first[0]:
        steady = (last[1] - first[1]) / (last[0] - first[0])
    return {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "steady_cpu_share": steady,
        "peak_rss_bytes": last[2] if last else usage.ru_maxrss * 1024,
        "exit_code": proc.returncode,
        "output": output,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        kernels = start_kernels(args.kernels, tmp)
        try:
            victim = kernels[-1] if kernels else None
            result = run_recorder(
                Path(tmp) / "history.sqlite3", args.seconds, args.interval, victim
            )
            db = Path(tmp) / "history.sqlite3"
            result["db_bytes"] = sum(
                p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file()
            )
        finally:
            stop(kernels)

    samples = max(int(result["wall_seconds"] / args.interval), 1)
    cpu_share = result["cpu_seconds"] / result["wall_seconds"]
    steady = result["steady_cpu_share"]
    report = {
        "kernels": args.kernels,
        "interval_seconds": args.interval,
        "wall_seconds": round(result["wall_seconds"], 2),
        "cpu_seconds": round(result["cpu_seconds"], 3),
        "cpu_share_of_one_core": round(cpu_share, 5),
        "steady_cpu_share_of_one_core": round(steady, 5) if steady is not None else None,
        "cpu_target": CPU_TARGET,
        "cpu_ms_per_sample": round(1000 * result["cpu_seconds"] / samples, 2),
        "peak_rss_bytes": result["peak_rss_bytes"],
        "rss_target_bytes": RSS_TARGET,
        "db_bytes": result["db_bytes"],
        "death_recorded": "died at" in result["output"],
        "exit_code": result["exit_code"],
        "ok": cpu_share <= CPU_TARGET and result["peak_rss_bytes"] <= RSS_TARGET,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        mib = 1 << 20
        print(
            f"recorder with {args.kernels} kernels, every {args.interval:g} s, "
            f"for {report['wall_seconds']:.1f} s"
        )
        print(
            f"  CPU : {100 * cpu_share:.2f}% of one core "
            f"(target {100 * CPU_TARGET:.0f}%: {cpu_share / CPU_TARGET:.2f}x the budget); "
            f"{report['cpu_ms_per_sample']} ms per sample, start-up included"
        )
        if steady is not None:
            print(f"        {100 * steady:.2f}% of one core once running")
        print(
            f"  RSS : {result['peak_rss_bytes'] / mib:.1f} MiB peak "
            f"(target {RSS_TARGET / mib:.0f} MiB: "
            f"{result['peak_rss_bytes'] / RSS_TARGET:.2f}x the budget)"
        )
        print(
            f"  DB  : {result['db_bytes'] / 1024:.0f} KiB; death recorded: "
            f"{'yes' if report['death_recorded'] else 'NO'}"
        )
        print("  " + ("within budget" if report["ok"] else "OVER BUDGET"))
    return 0 if report["ok"] and report["death_recorded"] else 1


if __name__ == "__main__":
    sys.exit(main())
