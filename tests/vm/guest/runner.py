"""The guest's scenario runner: ``runner.py OUTDIR [SCENARIO ...]`` (as root, in the guest).

Writes ``OUTDIR/boot.json`` (the kernel and how the guest came up) and then one
``OUTDIR/<scenario>.json`` per scenario as soon as it finishes, so a scenario that
hangs costs only its own result. Prints one progress line per scenario to the
serial console.
"""

import json
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cg  # noqa: E402
import scenarios  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def save(outdir, name, data):
    tmp = os.path.join(outdir, name + ".json.partial")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.rename(tmp, os.path.join(outdir, name + ".json"))


def boot_info():
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return {
        "uname": platform.uname()._asdict(),
        "cmdline": cg.read("/proc/cmdline"),
        "uptime_at_runner": uptime,
        "python": sys.version,
        "python_executable": sys.executable,
        "repo": REPO,
        "root_files": {
            f: cg.read(cg.path("/", f))
            for f in ("cgroup.controllers", "cgroup.subtree_control", "memory.max")
        },
        "proc_self_cgroup": cg.read("/proc/self/cgroup"),
        "mountinfo": cg.read("/proc/self/mountinfo"),
    }


def main():
    outdir = sys.argv[1]
    names = sys.argv[2:] or scenarios.ORDER
    os.chdir(REPO)  # python -m wizard: this checkout's wizard, not an installed one
    # No Jupyter of the host: its runtime files name servers this guest cannot reach.
    os.environ["JUPYTER_RUNTIME_DIR"] = "/tmp/jupyter-runtime"
    os.makedirs("/tmp/jupyter-runtime", exist_ok=True)
    save(outdir, "boot", boot_info())
    for name in names:
        kmsg = cg.Kmsg()
        start = time.monotonic()
        try:
            data = scenarios.SCENARIOS[name]()
        except Exception:
            data = {"error": traceback.format_exc()}
        finally:
            cg.end_all()
        data["seconds"] = round(time.monotonic() - start, 3)
        data["dmesg"], data["dmesg_filler_lines"] = kmsg.since(skip=scenarios.NOISE)
        save(outdir, name, data)
        print(
            f"vm-runner: {name} {'FAILED' if 'error' in data else 'done'} in {data['seconds']}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
