SIGNALS = [
    {
        "anchor": "signal-sigkill",
        "name": "SIGKILL",
        "number": 9,
        "status": 137,
        "cause": "memory",
        "meaning": "Killed outright, most often by the OOM killer.",
        "next": "box-memory",
    },
    {
        "anchor": "exit-code",
        "name": "exit code (e.g. 1)",
        "number": None,
        "status": None,
        "cause": "cannot-start",
        "meaning": "The kernel ended by itself.",
        "next": "box-home",
    },
]
