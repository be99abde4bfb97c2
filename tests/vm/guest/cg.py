"""cgroup v2 and kernel-log helpers for the scenarios (guest side, run as root).

Everything read is kept as the kernel wrote it (text, or None when the file does
not exist) so the tests and a later reader compare against the same bytes.
"""

import os
import subprocess
import sys
import time

ROOT = "/sys/fs/cgroup"
PYTHON = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
INSIDE = os.path.join(HERE, "inside.py")

# The files each test compares against, per cgroup.
FILES = (
    "cgroup.procs",
    "cgroup.subtree_control",
    "memory.max",
    "memory.high",
    "memory.current",
    "memory.peak",
    "memory.events",
    "memory.events.local",
    "memory.pressure",
    "memory.oom.group",
    "memory.swap.max",
    "pids.max",
    "pids.current",
    "pids.events",
)


def path(cg, name=""):
    return os.path.join(ROOT, cg.strip("/"), name)


def read(p):
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return None


def write(p, text):
    with open(p, "w") as f:
        f.write(text)


def make(cg, subtree=False, **files):
    """Create ``cg`` (and its parents); write ``files`` ({"memory_max": "300M"})."""
    os.makedirs(path(cg), exist_ok=True)
    if subtree:
        write(path(cg, "cgroup.subtree_control"), "+memory +pids")
    for key, value in files.items():
        write(path(cg, key.replace("_", ".")), value)


def capture(*cgroups):
    """``{"/pod/memory.max": text or None, ...}`` for every file of every cgroup."""
    return {"/" + cg.strip("/") + "/" + f: read(path(cg, f)) for cg in cgroups for f in FILES}


def events(cg, name="memory.events"):
    """``{key: int}`` of a flat-keyed file such as memory.events."""
    out = {}
    for line in (read(path(cg, name)) or "").splitlines():
        k, _, v = line.partition(" ")
        out[k] = int(v)
    return out


def into(cg):
    """A ``preexec_fn`` that moves the new process into ``cg`` before it execs."""
    procs = path(cg, "cgroup.procs")

    def move():
        write(procs, str(os.getpid()))

    return move


STARTED = []  # every process a scenario started: the runner ends those still alive


def spawn(cg, argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, preexec_fn=into(cg), **kw)
    STARTED.append(p)
    return p


def end_all():
    while STARTED:
        p = STARTED.pop()
        if p.poll() is None:
            p.kill()
            p.wait()


def python(cg, code, *args, **kw):
    """A Python process in ``cg`` running ``code`` (text)."""
    return spawn(cg, [PYTHON, "-c", code, *args], **kw)


def inside(cg, cmd, prefix=(), timeout=120, **kw):
    """Run ``cmd`` in ``cg`` through ``inside.py``: the process's own view plus ``cmd``'s
    output. ``prefix`` (e.g. unshare) runs between the move and inside.py.
    """
    import json

    argv = [*prefix, PYTHON, INSIDE, "--", *cmd]
    start = time.monotonic()
    p = spawn(cg, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    result = {
        "inside_returncode": p.returncode,
        "inside_seconds": round(time.monotonic() - start, 3),
    }
    try:
        result.update(json.loads(out))
    except ValueError:
        result["raw_stdout"] = out.decode(errors="replace")[-20000:]
    result["inside_stderr"] = err.decode(errors="replace")[-4000:]
    return result


WIZARD = [PYTHON, "-m", "wizard", "--json", "--no-input"]


class Kmsg:
    """The kernel log from a given record on, read from /dev/kmsg as the wizard does."""

    def __init__(self):
        self.start = self.last_seq() + 1

    @staticmethod
    def records():
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        out = []
        try:
            while True:
                try:
                    rec = os.read(fd, 8192)
                except BlockingIOError:
                    break
                except BrokenPipeError:
                    continue  # overwritten while reading: skip to the next record
                out.append(rec.decode(errors="replace"))
        finally:
            os.close(fd)
        return out

    def last_seq(self):
        recs = self.records()
        return int(recs[-1].split(",")[1]) if recs else -1

    def since(self, skip=None):
        """dmesg-style lines logged since this object was made; ``skip`` (a prefix)
        drops lines and counts them instead.
        """
        lines, skipped = [], 0
        for rec in self.records():
            head, _, msg = rec.partition(";")
            fields = head.split(",")
            if int(fields[1]) < self.start:
                continue
            msg = msg.split("\n", 1)[0]
            if skip and msg.startswith(skip):
                skipped += 1
                continue
            lines.append(f"[{int(fields[2]) / 1e6:12.6f}] {msg}")
        return lines, skipped


def wait_line(proc, want, timeout):
    """Read ``proc``'s stdout lines until one starts with ``want``; that line or None."""
    import select

    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not r:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        for line in buf.decode(errors="replace").splitlines():
            if line.startswith(want):
                return line
    return None
