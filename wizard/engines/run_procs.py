"""The processes of a ``wizard run``: the peak memory of the tree, sampled, and the
processes the cells left running, stopped at the end.

Reads the live /proc (never a test sysroot): these are real processes this wizard
started.
"""

import os
import time

from wizard.system import cgroup_child, procfs

_PAGE = procfs.page_size()


class Sampler:
    """Peak resident memory of the child's process tree, sampled."""

    def __init__(self, pid, cg):
        self.pid, self.cg = pid, cg
        self.peak = 0
        self.samples = 0
        self.proc = procfs.REAL if os.path.isdir(procfs.REAL + "/self") else None
        self.children_file = procfs.has_children_files(procfs.REAL)
        self.next_full_scan = 0.0

    def sample(self, now):
        if not self.proc:
            return
        if self.cg:
            pids = cgroup_child.pids_in(self.cg)
        elif self.children_file or now >= self.next_full_scan:
            # without the children files the tree comes from a scan of all of /proc
            pids = [self.pid, *procfs.ProcTree(self.proc).descendants(self.pid)]
            self.next_full_scan = now + 0.25
        else:
            return
        self.samples += 1
        self.peak = max(self.peak, sum(procfs.statm_rss(self.proc, p, _PAGE) or 0 for p in pids))


def live_leftovers(pgid, cg):
    """Processes still running (zombies aside) in the child's group or its cgroup."""
    found = set()
    if cg is not None:
        found.update(cgroup_child.pids_in(cg))
    if os.path.isdir(procfs.REAL + "/self"):
        for name in procfs.list_pids(procfs.REAL):
            if name.isdigit():
                st = procfs.read_stat(procfs.REAL, name)
                if st and st.pgrp == pgid:
                    found.add(int(name))
    else:  # no /proc: ask the group as a whole
        try:
            os.killpg(pgid, 0)
            found.add(pgid)
        except OSError:
            pass  # no one left
    return {p for p in found if not getattr(procfs.read_stat(procfs.REAL, p), "zombie", True)}


def stop_strays(pid, cg, signal_group, signal):
    """Processes the cells left running (background jobs): stopped, and counted.

    Zombies do not count: their new parent may reap them late (this one may be pid 1).
    """
    left = live_leftovers(pid, cg)
    if not left:
        return 0
    signal_group(signal.SIGTERM)
    for p in left:
        try:
            os.kill(p, signal.SIGTERM)  # also those that left the group (setsid)
        except OSError:
            pass  # gone already
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if not live_leftovers(pid, cg) & left:
            return len(left)
        time.sleep(0.05)
    signal_group(signal.SIGKILL)
    for p in live_leftovers(pid, cg) & left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass  # gone already
    return len(left)
