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
    cache = kernel.cache_dir()
    k = kernel.fetch(cache)
    initrd = initramfs.build(k, cache)
    with tempfile.TemporaryDirectory(prefix="wizard-vm-") as tmp:
        outdir = Path(tmp)
        job = {
            "VM_PYTHON": python or sys.executable,
            "VM_REPO": str(REPO),
            "VM_ARGS": " ".join(shlex.quote(s) for s in scenarios),
        }
        (outdir / "job.sh").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in job.items()))
        start = time.monotonic()
        with open(outdir / "console.log", "wb") as console:
            proc = subprocess.Popen(
                qemu_argv(k, initrd, outdir),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: nothing it starts outlives it
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                console.write(f"\nboot.py: killed qemu after {timeout}s\n".encode())
            finally:
                _stop(proc)
        return Boot(outdir, time.monotonic() - start, proc.returncode)


def _stop(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
