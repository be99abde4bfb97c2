"""Write what a boot captured to a directory, as files a person can read and diff.

``WIZARD_VM_DUMP=DIR python -m pytest tests/test_vm_cgroup2.py`` leaves::

    DIR/console.log, DIR/boot.json
    DIR/<scenario>/scenario.json           everything, as the guest saved it
    DIR/<scenario>/dmesg.txt               the kernel log of that scenario
    DIR/<scenario>/<files...>/pod/memory.events   the cgroup files, one per file
    DIR/<scenario>/<wizard...>/stdout, stderr, proc_self_cgroup, proc_self_mountinfo
"""

import json
import os
from pathlib import Path

ENV = "WIZARD_VM_DUMP"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else "")


def scenario(data, where):
    """Dump one scenario's ``data`` (the guest's dict) into the directory ``where``."""
    where = Path(where)
    _write(where / "scenario.json", json.dumps(data, indent=1, sort_keys=True))
    _write(where / "dmesg.txt", "\n".join(data.get("dmesg") or []) + "\n")
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        if key.startswith("files"):
            for cgfile, text in value.items():
                if text is not None:  # absent in the kernel: absent here too
                    _write(where / key / cgfile.lstrip("/"), text)
        elif "proc_self_cgroup" in value:  # a process's own view, from inside.py
            for part in ("stdout", "stderr", "proc_self_cgroup", "proc_self_mountinfo"):
                _write(where / key / part, value.get(part))


def boot(result, where=None):
    """Dump every scenario of a ``boot.Boot``; ``where`` defaults to ``$WIZARD_VM_DUMP``."""
    where = where or os.environ.get(ENV)
    if not where:
        return None
    where = Path(where)
    _write(where / "console.log", result.console)
    info = dict(result.info, host_seconds=round(result.seconds, 3))
    _write(where / "boot.json", json.dumps(info, indent=1, sort_keys=True))
    for name, data in result.scenarios.items():
        if data is not None:
            scenario(data, where / name)
    return where
