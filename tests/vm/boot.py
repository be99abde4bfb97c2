"""Boot the kernel once under qemu and bring back what the guest's runner wrote.

The guest writes ``boot.json`` and one ``<scenario>.json`` per scenario into the
output share; a scenario that never finished simply has no file, and the serial
console (``console.log``) tells why. qemu is killed when the deadline passes and
in any case before ``run`` returns.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vm import initramfs, kernel

REPO = Path(__file__).resolve().parents[2]

# loglevel=3: the console is a slow emulated UART and OOM reports are long; the
# kernel log itself keeps everything. printk.devkmsg=on lets the busy-log scenario
# write its lines to /dev/kmsg unthrottled; log_buf_len gives it room for them,
# as on a large host whose log holds days of messages.
APPEND = (
    "console=ttyS0 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all panic=-1 "
    "loglevel=3 printk.devkmsg=on log_buf_len=8M"
)


def qemu_argv(k, initrd, outdir):
    # TCG: /dev/kvm here is a nested software hypervisor on which -cpu host aborts.
    share = "security_model=none,multidevs=remap"
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "2048",
        "-smp",
        "2",
        "-kernel",
        str(k.vmlinuz),
        "-initrd",
        str(initrd),
        "-append",
        APPEND,
        "-no-reboot",
        "-nographic",
        "-nic",
        "none",
        "-virtfs",
        f"local,path=/,mount_tag=hostroot,readonly=on,{share}",
        "-virtfs",
        f"local,path={outdir},mount_tag=out,{share}",
    ]


class Boot:
    """What one boot brought back: ``scenarios`` {name: data}, ``info``, ``console``."""

    def __init__(self, outdir, seconds, returncode):
        self.seconds = seconds
        self.returncode = returncode
        self.console = _text(outdir / "console.log")
        self.info = _json(outdir / "boot.json") or {}
        self.scenarios = {}
        for f in sorted(outdir.glob("*.json")):
            if f.name not in ("boot.json",):
                self.scenarios[f.stem] = _json(f)


def _text(p):
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def _json(p):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def run(scenarios=(), timeout=420, python=None):
    """Boot, run ``scenarios`` (all when empty) in the guest, return a ``Boot``."""
    return start(scenarios, python).wait(timeout)


def start(scenarios=(), python=None, nice=0):
    """Begin a boot in a thread of its own; ``.wait(timeout)`` gives its ``Boot``.

    With ``nice``, qemu runs at that niceness until ``wait`` is called: an early boot
    (``prestart``) uses the CPU the tests before it leave idle, and gets it all when
    the tests that need it begin; the deadline counts from then.
    """
    pending = Pending(scenarios, python, nice)
    pending.thread.start()
    return pending


EARLY = None  # the boot ``prestart`` began, with every scenario


def prestart():
    """Start the boot every scenario needs now, niced, unless one is started already."""
    global EARLY
    if EARLY is None:
        EARLY = start(nice=10)
    return EARLY


def take(timeout):
    """The early boot's result if one was started, else a boot of its own."""
    global EARLY
    pending, EARLY = EARLY, None
    return pending.wait(timeout) if pending is not None else run(timeout=timeout)


def stop_early():
    """Kill an early boot nobody waited for (the tests that needed it did not run)."""
    global EARLY
    pending, EARLY = EARLY, None
    if pending is not None:
        pending.cancel()


class Pending:
    def __init__(self, scenarios, python, nice):
        self.scenarios, self.python, self.nice = scenarios, python, nice
        self.deadline = None  # monotonic; set by wait()
        self.cancelled = False
        self.proc = None
        self.result = None
        self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._boot, name="vm-boot", daemon=True)

    def wait(self, timeout):
        self.deadline = time.monotonic() + timeout
        self._renice(0)
        self.done.wait(timeout + 60)  # the thread kills qemu at the deadline
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise RuntimeError(f"the VM boot did not end within {timeout + 60} s")
        return self.result

    def cancel(self):
        self.cancelled = True
        self.done.wait(60)

    def _renice(self, value):
        proc = self.proc
        if proc is None:
            return
        # niceness is per thread on Linux: every thread of qemu
        for task in Path(f"/proc/{proc.pid}/task").glob("*"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(task.name), value)
            except (OSError, ValueError):
                pass

    def _boot(self):
        try:
            self.result = self._boot_once()
        except BaseException as exc:  # handed to wait(), in the test
            self.error = exc
        finally:
            self.done.set()

    def _boot_once(self):
        cache = kernel.cache_dir()
        k = kernel.fetch(cache)
        initrd = initramfs.build(k, cache)
        with tempfile.TemporaryDirectory(prefix="wizard-vm-") as tmp:
            outdir = Path(tmp)
            job = {
                "VM_PYTHON": self.python or sys.executable,
                "VM_REPO": str(REPO),
                "VM_ARGS": " ".join(shlex.quote(s) for s in self.scenarios),
            }
            (outdir / "job.sh").write_text(
                "".join(f"{k}={shlex.quote(v)}\n" for k, v in job.items())
            )
            nice = self.nice if self.deadline is None else 0
            t0 = time.monotonic()
            with open(outdir / "console.log", "wb") as console:
                self.proc = proc = subprocess.Popen(
                    qemu_argv(k, initrd, outdir),
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: nothing it starts outlives it
                    preexec_fn=(lambda: os.nice(nice)) if nice else None,
                )
                if nice and self.deadline is not None:
                    self._renice(0)  # wait() came while it started
                try:
                    while proc.poll() is None:
                        if self.cancelled:
                            break
                        if self.deadline is not None and time.monotonic() > self.deadline:
                            console.write(b"\nboot.py: killed qemu at its deadline\n")
                            break
                        time.sleep(0.2)
                finally:
                    _stop(proc)
            return Boot(outdir, time.monotonic() - t0, proc.returncode)


def _stop(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
