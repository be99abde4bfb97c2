"""The scenarios, one function each; every one returns what it saw as plain data.

Each builds its own cgroups under the root (names never reused), so the order of
the scenarios does not matter, except that ``busy_log`` floods the kernel log and
runs last. The runner adds the scenario's kernel log (``dmesg``) to the result.
"""

import json
import os
import subprocess

import cg

PIPE = subprocess.PIPE

# Allocate TARGET MiB in STEP MiB pieces, PAUSE seconds apart, for at most DEADLINE
# seconds; report, then wait for a line on stdin, free everything and report again.
ALLOC = r"""
import sys, time
target, step = int(sys.argv[1]) << 20, int(sys.argv[2]) << 20
pause, deadline = float(sys.argv[3]), float(sys.argv[4])
hold, got, start = [], 0, time.monotonic()
while got < target and time.monotonic() - start < deadline:
    hold.append(b"\x01" * step)  # written, not just reserved: every page is charged
    got += step
    time.sleep(pause)
print("held", got >> 20, round(time.monotonic() - start, 3), flush=True)
sys.stdin.readline()
del hold[:]
print("freed", flush=True)
sys.stdin.readline()
"""

# Fork up to N children that just sleep; count the forks the kernel refuses.
FORK = r"""
import os, sys, time
kids, refused = [], 0
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except BlockingIOError:  # EAGAIN: pids.max reached
        refused += 1
        continue
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    kids.append(pid)
print("forked", len(kids), "refused", refused, flush=True)
sys.stdin.readline()
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print("released", flush=True)
"""

NOISE = "vm-noise:"  # busy_log's filler lines (counted, not kept)


def _oom(cgroup, mib=600):
    """A Python in ``cgroup`` allocating ``mib`` MiB: pid, return code, stdout."""
    p = cg.python(cgroup, ALLOC, str(mib), "10", "0", "120", stdout=PIPE, stdin=PIPE)
    out, _ = p.communicate(b"\n\n", timeout=240)
    return {"pid": p.pid, "returncode": p.returncode, "stdout": out.decode(errors="replace")}


def pod_oom():
    """Kubernetes-like nesting: the limit on the pod, the processes in its child."""
    cg.make("pod", subtree=True, memory_max="300M")
    cg.make("pod/ctr")
    victim = _oom("pod/ctr")
    wizard = cg.inside("pod/ctr", cg.WIZARD)
    return {"victim": victim, "wizard": wizard, "files": cg.capture("pod", "pod/ctr")}


def oom_group():
    """memory.oom.group=1: one OOM kills every member; /other has no kill at all."""
    cg.make("pod2", subtree=True, memory_max="300M")
    cg.make("pod2/ctr", memory_oom_group="1")
    cg.make("other")
    bystander = cg.spawn("other", ["sleep", "600"])
    members = [cg.spawn("pod2/ctr", ["sleep", "600"]) for _ in range(3)]
    victim = _oom("pod2/ctr")
    for m in members:
        m.wait(timeout=60)
    result = {
        "victim": victim,
        "members": [{"pid": m.pid, "returncode": m.returncode} for m in members],
        "wizard_ctr": cg.inside("pod2/ctr", cg.WIZARD),
        "wizard_other": cg.inside("other", cg.WIZARD),
        "files": cg.capture("pod2", "pod2/ctr", "other"),
    }
    bystander.kill()
    return result


def memory_high():
    """memory.high alone: no kill, the allocation is throttled instead."""
    cg.make("pod3", subtree=True, memory_high="300M")
    cg.make("pod3/ctr")
    p = cg.python("pod3/ctr", ALLOC, "335", "5", "0.05", "60", stdout=PIPE, stdin=PIPE)
    held = cg.wait_line(p, "held", 120)
    during = cg.capture("pod3", "pod3/ctr")
    p.stdin.write(b"free\n")
    p.stdin.flush()
    freed = cg.wait_line(p, "freed", 60)
    # The wizard runs after the memory is freed: while usage is over memory.high
    # every page it touches would be throttled too (the whole run takes minutes).
    wizard = cg.inside("pod3/ctr", cg.WIZARD)
    p.stdin.write(b"\n")
    p.stdin.flush()
    p.wait(timeout=30)
    return {
        "allocator": {"pid": p.pid, "held": held, "freed": freed, "returncode": p.returncode},
        "files_during": during,
        "wizard": wizard,
        "files": cg.capture("pod3", "pod3/ctr"),
    }


# Docker's way: a cgroup namespace and a mount namespace with cgroup2 mounted afresh.
REMOUNT = 'umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"'


def cgroupns():
    """A cgroup namespace whose root (/pod4/ctr) has a memory.max."""
    cg.make("pod4", subtree=True, memory_max="300M")
    cg.make("pod4/ctr", memory_max="200M")
    docker = ["unshare", "-C", "-m", "--propagation", "private", "sh", "-c", REMOUNT, "sh"]
    return {
        "wizard_remount": cg.inside("pod4/ctr", cg.WIZARD, prefix=docker),
        "wizard_no_remount": cg.inside("pod4/ctr", cg.WIZARD, prefix=["unshare", "-C"]),
        "files": cg.capture("pod4", "pod4/ctr"),
    }


def cgroupns_pod_limit():
    """A pod's limit above a container with its own cgroup namespace (remounted): the
    namespace's root (/pod7/ctr) has no memory.max; a process in it is OOM-killed."""
    cg.make("pod7", subtree=True, memory_max="200M")
    cg.make("pod7/ctr")
    victim = _oom("pod7/ctr", 400)
    docker = ["unshare", "-C", "-m", "--propagation", "private", "sh", "-c", REMOUNT, "sh"]
    wizard = cg.inside("pod7/ctr", cg.WIZARD, prefix=docker)
    return {"victim": victim, "wizard": wizard, "files": cg.capture("pod7", "pod7/ctr")}


def pids_limit():
    """pids.max on the pod, the forks in its child."""
    cg.make("pod5", subtree=True, pids_max="20")
    cg.make("pod5/ctr")
    p = cg.python("pod5/ctr", FORK, "30", stdout=PIPE, stdin=PIPE)
    forked = cg.wait_line(p, "forked", 120)
    during = cg.capture("pod5", "pod5/ctr")
    p.stdin.write(b"\n")
    p.stdin.flush()
    released = cg.wait_line(p, "released", 60)
    p.wait(timeout=30)
    # After the release: at pids.max the wizard itself could not start its threads.
    wizard = cg.inside("pod5/ctr", cg.WIZARD)
    return {
        "forker": {"pid": p.pid, "forked": forked, "released": released},
        "files_during": during,
        "wizard": wizard,
        "files": cg.capture("pod5", "pod5/ctr"),
    }


NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {
            "cell_type": "code",
            "id": "hog",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "hog = b'\\x01' * (300 << 20)\nprint(len(hog))\n",
        }
    ],
}


def run_in_container():
    """``wizard run --memory-limit`` from a cgroup that has processes (a container)."""
    cg.make("pod6", memory_max="500M")  # processes live here: no subtree controllers
    sleeper = cg.spawn("pod6", ["sleep", "600"])
    os.makedirs("/tmp/vm-nb", exist_ok=True)
    nb = "/tmp/vm-nb/hog.ipynb"
    with open(nb, "w") as f:
        json.dump(NOTEBOOK, f)
    before = cg.capture("pod6")
    run = [cg.PYTHON, "-m", "wizard", "run", "--memory-limit", "100M"]
    result = {"files_before": before, "wizard_json": cg.inside("pod6", [*run, "--json", nb])}
    result["files"] = cg.capture("pod6")  # after the JSON run: its kills alone
    # The run may have moved the container's processes into a leaf (cgroup v2 allows
    # none beside children with controllers): the next process starts there.
    leaf = "pod6/wizard-leaf" if os.path.isdir(cg.path("pod6/wizard-leaf")) else "pod6"
    result["leaf"] = leaf
    result["wizard_text"] = cg.inside(leaf, [*run, nb])
    result["files_end"] = cg.capture("pod6")
    sleeper.kill()
    return result


# A stand-in kernel: named like one (``-f .../kernel-ID.json``), holding N MiB until told.
KERNEL = r"""
import sys
hold = b"\x01" * (int(sys.argv[1]) << 20)
print("ready", flush=True)
sys.stdin.readline()
"""
KERNEL_ID = "4f1c2a3b-0000-4000-8000-000000000008"


def kernel_cgroup():
    """A kernel in its own limited cgroup; the wizard run from a terminal outside it."""
    cg.make("pod8", subtree=True, memory_max="400M", pids_max="64")
    cg.make("pod8/kern")
    cg.make("term")
    os.makedirs("/tmp/vm-rt", exist_ok=True)
    conn = f"/tmp/vm-rt/kernel-{KERNEL_ID}.json"
    with open(conn, "w") as f:
        json.dump({"kernel_name": "python3", "shell_port": 1, "key": "not-shown"}, f)
    k = cg.python("pod8/kern", KERNEL, "100", "-f", conn, stdout=PIPE, stdin=PIPE)
    ready = cg.wait_line(k, "ready", 60)
    result = {
        "kernel": {"pid": k.pid, "ready": ready, "connection_file": conn},
        "wizard": cg.inside("term", cg.WIZARD),
        "wizard_text": cg.inside("term", [cg.PYTHON, "-m", "wizard", "--no-input"]),
        "files": cg.capture("pod8", "pod8/kern", "term"),
    }
    k.stdin.write(b"\n")
    k.stdin.flush()
    k.wait(timeout=30)
    return result


def busy_log(lines=60000):
    """A long kernel log with the newest OOM kills at its end."""
    cg.make("pod7", subtree=True, memory_max="200M")
    cg.make("pod7/ctr")
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        for i in range(lines):
            os.write(fd, b"%s filler line %06d of a busy host's kernel log\n" % (NOISE.encode(), i))
    finally:
        os.close(fd)
    victims = [_oom("pod7/ctr", 400) for _ in range(2)]
    wizard = cg.inside("pod7/ctr", cg.WIZARD)
    return {
        "noise_lines": lines,
        "victims": victims,
        "wizard": wizard,
        "files": cg.capture("pod7", "pod7/ctr"),
    }


ORDER = (
    "pod_oom",
    "oom_group",
    "memory_high",
    "cgroupns",
    "cgroupns_pod_limit",
    "pids_limit",
    "run_in_container",
    "kernel_cgroup",
    "busy_log",
)
SCENARIOS = {name: globals()[name] for name in ORDER}
