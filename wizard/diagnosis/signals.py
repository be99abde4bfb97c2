"""How a kernel can end, and what each ending most likely means.

One table serves three readers: the wizard (to steer its verdict from the
banner's wording), the site (the ``kernel-signals`` page renders this table,
one anchored row per entry) and the tests.
"""

from __future__ import annotations

from typing import Any

# Every signal name by number (Linux numbering): the one table of names. The rows
# below give the common ones their meaning; their numbers and shell statuses come
# from here.
NAMES = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    5: "SIGTRAP",
    6: "SIGABRT",
    7: "SIGBUS",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGUSR1",
    11: "SIGSEGV",
    12: "SIGUSR2",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
    24: "SIGXCPU",
    25: "SIGXFSZ",
    31: "SIGSYS",
}


NUMBERS = {name: number for number, name in NAMES.items()}
SHELL_OFFSET = 128  # a shell reports death by signal N as exit status 128 + N

# cause: the family of verdicts this ending leads to.
#   memory       - look at memory first (the OOM killer sends SIGKILL)
#   native       - native code in a library crashed
#   cannot-start - the kernel process could not start or exited at once
#   stopped      - something asked the kernel to stop
SIGNALS: list[dict[str, Any]] = [
    {
        "anchor": "signal-sigkill",
        "name": "SIGKILL",
        "cause": "memory",
        "meaning": "Killed outright. Most often the out-of-memory killer; also a forced "
        "kill (kill -9, a stopped project, a restart that timed out).",
        "next": "kernel-terminated-memory",
    },
    {
        "anchor": "signal-sigsegv",
        "name": "SIGSEGV",
        "cause": "native",
        "meaning": "Segmentation fault: compiled code in a library read or wrote memory it "
        "does not own.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigabrt",
        "name": "SIGABRT",
        "cause": "native",
        "meaning": "A native library aborted on purpose: a failed assertion, a double free, "
        "a corrupted heap.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigbus",
        "name": "SIGBUS",
        "cause": "native",
        "meaning": "Bad access to mapped memory: a file shrank under a memory map, or the "
        "shared-memory area /dev/shm is full.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigill",
        "name": "SIGILL",
        "cause": "native",
        "meaning": "An instruction this processor does not have: a package built for a "
        "newer CPU than the one running it.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigterm",
        "name": "SIGTERM",
        "cause": "stopped",
        "meaning": "Asked to stop: a shutdown or restart from the notebook, a halted or "
        "stopped project, a server shutting down.",
        "next": "jupyter-kernel-terminated",
    },
    {
        "anchor": "exit-code",
        "name": "exit code (e.g. 1)",
        "number": None,
        "status": None,
        "cause": "cannot-start",
        "meaning": "The kernel process ended by itself. Right after start this usually means "
        "it could not start: a broken install or a wrong interpreter in the kernelspec.",
        "next": "kernel-cannot-start",
    },
]

for _row in SIGNALS:
    if _row["name"] in NUMBERS:
        _row["number"] = NUMBERS[_row["name"]]
        _row["status"] = SHELL_OFFSET + _row["number"]
del _row

BY_NAME = {row["name"]: row for row in SIGNALS if row["number"] is not None}
BY_NUMBER = {row["number"]: row for row in SIGNALS if row["number"] is not None}
BY_STATUS = {row["status"]: row for row in SIGNALS if row["status"] is not None}
EXIT_CODE = SIGNALS[-1]


def describe_status(status: int | None) -> dict[str, Any]:
    """The table row for a shell-style exit status (137 -> SIGKILL); the exit-code row otherwise."""
    return BY_STATUS.get(status, EXIT_CODE)


def signal_name(number: int | None) -> str | None:
    """``SIGSEGV`` for 11; ``signal 42`` for a number without a name; None for None.

    This system's own numbering first (macOS numbers some signals differently), then
    Linux's.
    """
    if number is None:
        return None
    try:
        import signal

        return signal.Signals(number).name
    except (ValueError, AttributeError):
        return NAMES.get(number, f"signal {number}")
