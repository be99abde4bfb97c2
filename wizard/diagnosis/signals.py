"""How a kernel can end, and what each ending most likely means.

One table serves three readers: the wizard (to steer its verdict from the
banner's wording), the site (the ``kernel-signals`` page renders this table,
one anchored row per entry) and the tests.
"""

# cause: the family of verdicts this ending leads to.
#   memory       - look at memory first (the OOM killer sends SIGKILL)
#   native       - native code in a library crashed
#   cannot-start - the kernel process could not start or exited at once
#   stopped      - something asked the kernel to stop
SIGNALS = [
    {
        "anchor": "signal-sigkill",
        "name": "SIGKILL",
        "number": 9,
        "status": 137,
        "cause": "memory",
        "meaning": "Killed outright. Most often the out-of-memory killer; also a forced "
        "kill (kill -9, a stopped project, a restart that timed out).",
        "next": "kernel-terminated-memory",
    },
    {
        "anchor": "signal-sigsegv",
        "name": "SIGSEGV",
        "number": 11,
        "status": 139,
        "cause": "native",
        "meaning": "Segmentation fault: compiled code in a library read or wrote memory it "
        "does not own.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigabrt",
        "name": "SIGABRT",
        "number": 6,
        "status": 134,
        "cause": "native",
        "meaning": "A native library aborted on purpose: a failed assertion, a double free, "
        "a corrupted heap.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigbus",
        "name": "SIGBUS",
        "number": 7,
        "status": 135,
        "cause": "native",
        "meaning": "Bad access to mapped memory: a file shrank under a memory map, or the "
        "shared-memory area /dev/shm is full.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigill",
        "name": "SIGILL",
        "number": 4,
        "status": 132,
        "cause": "native",
        "meaning": "An instruction this processor does not have: a package built for a "
        "newer CPU than the one running it.",
        "next": "kernel-terminated-eliminate-jupyter",
    },
    {
        "anchor": "signal-sigterm",
        "name": "SIGTERM",
        "number": 15,
        "status": 143,
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

BY_NAME = {row["name"]: row for row in SIGNALS if row["number"] is not None}
BY_NUMBER = {row["number"]: row for row in SIGNALS if row["number"] is not None}
BY_STATUS = {row["status"]: row for row in SIGNALS if row["status"] is not None}
EXIT_CODE = SIGNALS[-1]


def describe_status(status):
    """The table row for a shell-style exit status (137 -> SIGKILL); the exit-code row otherwise."""
    return BY_STATUS.get(status, EXIT_CODE)
