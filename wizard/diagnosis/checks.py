"""The checks the wizard runs, in the order its report shows them (the site renders this list)."""

CHECKS = [
    {
        "id": "banner",
        "title": "What the message said",
        "what": "The banner's wording (asked, or given with --banner): a signal name, an exit "
        "code, or only that the kernel died. It decides which evidence is looked at first.",
    },
    {
        "id": "deaths",
        "title": "Recorded deaths",
        "what": "The kernels the recorder (the watch command, or the server extension) saw "
        "die in the last day: when, which notebook, the memory each held against the limit, "
        "and the cause: oom-kill, shutdown, signal, exit or unknown.",
    },
    {
        "id": "memory",
        "title": "Memory",
        "what": "The memory limit that really applies: the smallest limit of this process's "
        "cgroup and its ancestors (v1 and v2), else the machine's memory. Used, available, "
        "peak, swap and memory pressure where the system reports them.",
    },
    {
        "id": "oom",
        "title": "Out-of-memory kills",
        "what": "The cgroup's count of processes the OOM killer ended, the machine's count, "
        "and, where the kernel log can be read, which processes it killed, when and how big "
        "they were.",
    },
    {
        "id": "processes",
        "title": "Processes",
        "what": "The number of processes against the cgroup's pids limit: a kernel that "
        "forks too many processes is stopped there.",
    },
    {
        "id": "kernels",
        "title": "Open kernels",
        "what": "Every kernel process you run, found by the connection file on its command "
        "line, with or without a Jupyter server: its memory (children included), share of "
        "the limit, age, the notebook it belongs to, and its state where a server knows it.",
    },
    {
        "id": "servers",
        "title": "Jupyter servers",
        "what": "The servers listed in Jupyter's runtime directory: alive or stale, answering "
        "or not (only servers on this machine are asked), and whether a plain Jupyter server "
        "can be started here to rule out the usual interface.",
    },
    {
        "id": "kernelspecs",
        "title": "Kernelspecs",
        "what": "The installed kernelspecs in every Jupyter data directory: whether each one's "
        "interpreter exists and, with --deep, whether it really starts.",
    },
]
