"""Raw reads of Linux's /proc, shared by the probes and the commands that act on processes.

Plain ``os.open``/``os.read`` on purpose: scanning thousands of processes this way
costs a fraction of what psutil does. ``proc`` arguments are the /proc directory
itself (``root.path("/proc")``), so fixture trees work.
"""

import os

CMDLINE_MAX = 64 * 1024  # the kernel's own cap on what /proc/PID/cmdline shows


def split_cmdline(data):
    argv = [a.decode("utf-8", "replace") for a in data.rstrip(b"\0").split(b"\0")]
    if len(argv) == 1 and " " in argv[0]:
        # setproctitle-style: the process rewrote its command line as one string
        argv = argv[0].split()
    return argv


def read(path, limit):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def statm_rss(proc, pid, page):
    try:
        return int(read(f"{proc}/{pid}/statm", 512).split()[1]) * page
    except (OSError, IndexError, ValueError):
        return None


def stat_fields(stat):
    # the fields after "pid (comm) ": comm may hold spaces and parentheses
    return stat[stat.rfind(")") + 2 :].split()


def ppid(stat):
    try:
        return int(stat_fields(stat)[1])
    except (IndexError, ValueError):
        return None


def started(stat, btime, clk):
    if btime is None:
        return None
    try:
        return btime + int(stat_fields(stat)[19]) / clk
    except (IndexError, ValueError):
        return None


class ProcTree:
    """Children of a pid: /proc/PID/task/TID/children, else a ppid map of /proc/*/stat."""

    def __init__(self, proc):
        self.proc = proc
        self.by_parent = None  # built only when children files are missing

    def children(self, pid):
        if self.by_parent is None:
            kids = self._from_children_files(pid)
            if kids is not None:
                return kids
            self._build_map()
        return self.by_parent.get(pid, [])

    def _from_children_files(self, pid):
        """Children listed in task/*/children; None when the system has no such files."""
        base = f"{self.proc}/{pid}/task"
        try:
            tids = os.listdir(base)
        except FileNotFoundError:
            return None if os.path.isdir(f"{self.proc}/{pid}") else []
        except OSError:
            return []
        kids = []
        for tid in tids:
            try:
                data = read(f"{base}/{tid}/children", 1 << 16)
            except FileNotFoundError:
                if os.path.isdir(f"{base}/{tid}"):
                    return None  # a kernel built without CONFIG_PROC_CHILDREN
                continue  # the thread ended
            except OSError:
                continue
            kids.extend(int(x) for x in data.split() if x.isdigit())
        return kids

    def _build_map(self):
        self.by_parent = {}
        try:
            names = os.listdir(self.proc)
        except OSError:
            return
        for name in names:
            if not name.isdigit():
                continue
            try:
                stat = read(f"{self.proc}/{name}/stat", 4096).decode("ascii", "replace")
            except OSError:
                continue
            parent = ppid(stat)
            if parent is not None:
                self.by_parent.setdefault(parent, []).append(int(name))

    def descendants(self, pid, skip=()):
        """Every process below ``pid``, leaving out ``skip`` pids and what is below them."""
        out = set()
        todo = [pid]
        while todo:
            for c in self.children(todo.pop()):
                if c in out or c == pid or c in skip:
                    continue
                out.add(c)
                todo.append(c)
        return out
