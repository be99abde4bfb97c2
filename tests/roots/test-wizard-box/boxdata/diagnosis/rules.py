CHECKS = [
    {
        "id": "banner",
        "title": "What the message said",
        "what": "The banner's wording, asked or given with --banner.",
    },
    {"id": "memory", "title": "Memory", "what": "The memory limit that applies."},
]

RULES = [
    {
        "id": "killed-sigkill",
        "severity": "problem",
        "check": "banner",
        "when": "The message names SIGKILL.",
        "doc_label": "box-signals",
    },
    {
        "id": "oom-kills-recorded",
        "severity": "problem",
        "check": "memory",
        "when": "The OOM killer's count is above zero.",
        "doc_label": "box-memory",
    },
]
