"""Run a command and report it together with this process's own view of its cgroup.

Started inside the scenario's cgroup (and namespaces), so ``/proc/self/cgroup``,
``/proc/self/mountinfo`` and the files at the cgroup2 mount are exactly what the
command sees. Prints one JSON object: ``proc_self_cgroup``, ``proc_self_mountinfo``,
``visible`` (files at the mount root and at the own cgroup's directory, as seen
here), and ``argv``, ``returncode``, ``stdout``, ``stderr``, ``seconds`` and
``json`` (stdout parsed, when it is JSON) of the command.
"""

import json
import os
import subprocess
import sys
import time

NAMES = ("memory.max", "memory.high", "memory.events", "memory.peak", "pids.max", "pids.events")


def read(p):
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return None


def visible(own):
    out = {}
    rel = own.split("::", 1)[-1].strip() if own else "/"
    for d in sorted({"/sys/fs/cgroup", os.path.normpath("/sys/fs/cgroup/" + rel)}):
        for n in NAMES:
            out[f"{d}/{n}"] = read(f"{d}/{n}")
    return out


def main():
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    own = read("/proc/self/cgroup")
    report = {
        "proc_self_cgroup": own,
        "proc_self_mountinfo": read("/proc/self/mountinfo"),
        "visible": visible(own),
        "argv": cmd,
    }
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    report["seconds"] = round(time.monotonic() - start, 3)
    report["returncode"] = p.returncode
    report["stdout"] = p.stdout.decode(errors="replace")
    report["stderr"] = p.stderr.decode(errors="replace")[-8000:]
    try:
        report["json"] = json.loads(report["stdout"])
    except ValueError:
        report["json"] = None
    print(json.dumps(report))


if __name__ == "__main__":
    main()
