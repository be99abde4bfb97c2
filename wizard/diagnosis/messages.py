"""The one table of messages a reader may paste: what each looks like and where it is explained.

Read by ``banner.parse`` (the wizard's ``--banner``) and, at docs build time, turned into
the JSON the site's paste box matches against (``docs/_ext/wizard_site.py``), so the two
cannot drift: every ``id`` is the anchor of its entry on the by-message page, and the
build fails when one is missing or its heading differs.

The patterns are regular expressions in the subset Python's ``re`` and JavaScript's
``RegExp`` read alike (no look-behind, no named groups, no inline flags); they are tried
case-insensitively against each line of the paste after ``normalise`` took off what a log
or a terminal adds around a message. The first entry (in table order) whose pattern finds
a line wins, so the more specific entries come first.
"""

import re
from typing import Optional, TypedDict


class Message(TypedDict):
    id: str  # the entry's anchor on the by-message page
    heading: str  # the entry's heading there, the message as an interface prints it
    patterns: list  # regular expressions, any of which finds it
    signal: Optional[str]  # the signal the message implies, when it names none itself
    checked: str  # the versions the wording was checked against, and when


# What logs and terminals put before a message; taken off, repeatedly, before matching.
PREFIXES = [
    # a Jupyter server's log line: [E 2026-12-02 10:00:00.123 ServerApp]
    r"^\[[A-Z] (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d(\.\d+)? [\w.-]+\]\s*",
    # syslog and journalctl: Dec 02 10:00:00 host kernel:
    r"^[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \S+ [\w./@-]+(\[\d+\])?:\s*",
    # dmesg: [12345.678] ; dmesg -T: [Wed Dec  2 10:00:00 2026]
    r"^\[ *\d+\.\d+\]\s*",
    r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4}\]\s*",
    # an ISO timestamp, as journalctl -o short-iso and many loggers write it
    r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d([.,]\d+)?(Z|[+-]\d\d:?\d\d)?\s+",
    # VS Code's Jupyter log: 10:00:00.123 [error]
    r"^\d\d:\d\d:\d\d(\.\d+)? \[\w+\]\s*",
    # a level word: ERROR: , Warning -
    r"^(error|warning|warn|info|critical|fatal)\s*[:-]\s+",
    # a shell prompt
    r"^[$%#>]\s+",
]
# Quotes around a message, and a final period, ellipsis or exclamation mark.
QUOTES = r"^[\"'`\u201c\u201d\u2018\u2019]+|[\"'`\u201c\u201d\u2018\u2019]+$"
ENDING = r"(\s*(\.|\u2026|!))+$"
# How far into a paste we look: a long traceback still has its telling line early or late.
MAX_LINES = 200
MAX_LINE = 1000

# What a shell puts before a signal's description: "[1]+  ", "script.sh: line 3: 12345 ",
# "zsh: ".
_SHELL = r"^(\[\d+\][+-]? +|.*line \d+: +\d+ +|zsh: +)?"

_CHECKED_JLAB = "JupyterLab 4.2 and Notebook 7.2 sources, December 2026"
_CHECKED_VSCODE = "vscode-jupyter 2024.x sources, December 2026"
_CHECKED_CLIENT = "jupyter_client 8.10 and jupyter_server 2.21 sources, December 2026"
_CHECKED_SHELL = "bash 5.2 and zsh 5.9 signal descriptions, December 2026"
_CHECKED_LINUX = "Linux 6.x mm/oom_kill.c wording, December 2026"
_CHECKED_SITE = "the service's own pages and messages, December 2026"


def _m(id, heading, patterns, checked, signal=None) -> Message:
    return {
        "id": id,
        "heading": heading,
        "patterns": patterns,
        "signal": signal,
        "checked": checked,
    }


MESSAGES = [
    # -- Jupyter's own interfaces
    _m(
        "msg-appears-to-have-died",
        "The kernel for PATH appears to have died. It will restart automatically.",
        [r"kernel (for .+ )?appears to have died"],
        _CHECKED_JLAB,
    ),
    _m(
        "msg-dead-kernel",
        "The kernel has died, and the automatic restart has failed.",
        [r"kernel has died, and the automatic restart has failed", r"^dead kernel$"],
        "Notebook 6.5 sources, December 2026",
    ),
    _m(
        "msg-error-starting-kernel",
        "Error Starting Kernel",
        [r"error starting kernel"],
        _CHECKED_JLAB,
    ),
    _m(
        "msg-restarter-failed",
        "KernelRestarter: restart failed",
        [r"kernelrestarter: restart failed", r"kernel \S+ died, removing from map"],
        _CHECKED_CLIENT,
    ),
    _m(
        "msg-restarter-restarting",
        "KernelRestarter: restarting kernel (1/5), keep random ports",
        [r"kernelrestarter: restarting kernel \(\d+/\d+\)", r"^kernel restarted: \S+$"],
        _CHECKED_CLIENT,
    ),
    _m(
        "msg-server-unavailable",
        "Server unavailable or unreachable",
        [r"server unavailable or unreachable", r"your server at .+ is not running"],
        "JupyterHub 5 and its JupyterLab extension, December 2026",
    ),
    # -- IDEs
    _m(
        "msg-vscode-crashed",
        "The Kernel crashed while executing code in the current cell or a previous cell.",
        [r"kernel crashed while executing code"],
        _CHECKED_VSCODE,
    ),
    _m(
        "msg-vscode-restarted",
        "The kernel 'X' died and is being automatically restarted by Jupyter.",
        [r"kernel .+ died and is being automatically restarted"],
        _CHECKED_VSCODE,
    ),
    _m(
        "msg-vscode-dead",
        "Cannot run cells, as the kernel 'X' is dead.",
        [r"cannot (run cells|execute code), as the kernel .+ is dead"],
        _CHECKED_VSCODE,
    ),
    _m(
        "msg-vscode-canceled-future",
        "Canceled future for execute_request message before replies were done",
        [r"canceled future for \w+ message before replies were done"],
        _CHECKED_VSCODE,
    ),
    _m(
        "msg-vscode-exit-code",
        "Kernel died with exit code -9",
        [r"kernel died with exit code -?\d+"],
        _CHECKED_VSCODE,
    ),
    _m(
        "msg-spyder-died",
        "The kernel died, restarting",
        [r"^the kernel died, restarting"],
        "Spyder 6.0 sources, December 2026",
    ),
    # -- CoCalc
    _m(
        "msg-cocalc-sigkill",
        "Kernel last terminated by signal SIGKILL.",
        [r"kernel last terminated by signal sigkill"],
        _CHECKED_SITE,
        "SIGKILL",
    ),
    _m(
        "msg-cocalc-crash",
        "Kernel last terminated by signal SIGSEGV.",
        [r"kernel last terminated by signal sig(segv|abrt|bus|ill|fpe)"],
        _CHECKED_SITE,
    ),
    _m(
        "msg-cocalc-exit",
        "Kernel last exited with code 1.",
        [r"kernel last exited with code -?\d+"],
        _CHECKED_SITE,
    ),
    # -- hosted notebooks
    _m(
        "msg-colab",
        "Your session crashed after using all available RAM",
        [r"session crashed after using all available ram", r"^your session crashed"],
        _CHECKED_SITE,
    ),
    _m(
        "msg-kaggle",
        "Your notebook tried to allocate more memory than is available. It has restarted.",
        [r"tried to allocate more memory than is available"],
        _CHECKED_SITE,
    ),
    _m(
        "msg-databricks-unresponsive",
        "The Python kernel is unresponsive",
        [r"python kernel is unresponsive"],
        _CHECKED_SITE,
    ),
    _m(
        "msg-databricks-137",
        "The Python process exited with exit code 137 (SIGKILL: Killed). This may have been "
        "caused by an OOM error.",
        [r"python process exited with exit code 137"],
        _CHECKED_SITE,
        "SIGKILL",
    ),
    # -- the operating system and the cluster
    _m(
        "msg-oom-killed-process",
        "Out of memory: Killed process 12345 (python)",
        [
            r"out of memory: killed process \d+",
            r"killed process \d+ \(",
            r"oom-kill:",
            r"invoked oom-killer",
        ],
        _CHECKED_LINUX,
        "SIGKILL",
    ),
    _m(
        "msg-slurm-oom",
        "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=1234.batch.",
        [r"detected \d+ oom[-_ ]kill event", r"\bout_of_memory\b"],
        "Slurm 23.11 and 24.05 wording, December 2026",
        "SIGKILL",
    ),
    _m(
        "msg-k8s-oomkilled",
        "Reason: OOMKilled",
        [r"\boomkilled\b"],
        "Kubernetes 1.30 (kubectl describe pod) and Docker 27 (docker inspect), December 2026",
        "SIGKILL",
    ),
    _m(
        "msg-exit-137",
        "Exit Code: 137",
        [
            r"exit(ed)? (code|status):? ?\(?137\)?",
            r"^exited \(137\)",
            r"returned non-zero exit status 137",
        ],
        "Kubernetes 1.30, Docker 27 and Python 3.12's subprocess, December 2026",
        "SIGKILL",
    ),
    _m(
        "msg-subprocess-signal",
        "died with <Signals.SIGKILL: 9>.",
        [r"died with <signals\.sig\w+: \d+>", r"returned non-zero exit status -\d+"],
        "Python 3.9 to 3.13 subprocess sources, December 2026",
    ),
    _m(
        "msg-macos-application-memory",
        "Your system has run out of application memory.",
        [r"run out of application memory"],
        "macOS 14 and 15, December 2026",
    ),
    # -- Python itself and native libraries
    _m(
        "msg-fatal-python-error",
        "Fatal Python error: Segmentation fault",
        [r"fatal python error: "],
        "CPython 3.9 to 3.13 faulthandler sources, December 2026",
    ),
    _m(
        "msg-bad-alloc",
        "terminate called after throwing an instance of 'std::bad_alloc'",
        [r"std::bad_alloc"],
        "GCC 12 to 14 libstdc++ (verbose terminate handler), December 2026",
        "SIGABRT",
    ),
    _m(
        "msg-terminate-called",
        "terminate called after throwing an instance of 'std::runtime_error'",
        [r"terminate called (after throwing an instance of|without an active exception)"],
        "GCC 12 to 14 libstdc++ (verbose terminate handler), December 2026",
        "SIGABRT",
    ),
    _m(
        "msg-glibc-abort",
        "double free or corruption (out)",
        [
            r"double free or corruption",
            r"free\(\): invalid (pointer|size|next size)",
            r"malloc\(\): [a-z ]*corrupt",
            r"corrupted size vs\.? prev_size",
        ],
        "glibc 2.36 to 2.40 malloc checks, December 2026",
        "SIGABRT",
    ),
    _m(
        "msg-memoryerror",
        "MemoryError",
        [
            r"^memoryerror\b",
            r"unable to allocate .+ for an array with shape",
            r"_arraymemoryerror",
        ],
        "CPython 3.12 and NumPy 1.26 and 2.x, December 2026",
    ),
    _m(
        "msg-omp-error-15",
        "OMP: Error #15",
        [r"omp: error #15"],
        "LLVM and Intel OpenMP runtimes, December 2026",
        "SIGABRT",
    ),
    _m(
        "msg-cuda",
        "CUDA out of memory",
        [r"cuda out of memory", r"cuda error: out of memory"],
        "PyTorch 2.x, December 2026",
    ),
    _m(
        "msg-illegal-instruction",
        "Illegal instruction",
        [
            _SHELL + r"illegal (hardware )?instruction\b",
            r"compiled to use \w+ instructions, but these aren't available",
        ],
        _CHECKED_SHELL,
        "SIGILL",
    ),
    _m(
        "msg-segfault",
        "Segmentation fault (core dumped)",
        [_SHELL + r"segmentation fault\b"],
        _CHECKED_SHELL,
        "SIGSEGV",
    ),
    _m(
        "msg-aborted",
        "Aborted (core dumped)",
        [_SHELL + r"(aborted|abort|iot instruction)( +\(core dumped\))?( +.*)?$"],
        _CHECKED_SHELL,
        "SIGABRT",
    ),
    _m("msg-bus-error", "Bus error", [_SHELL + r"bus error\b"], _CHECKED_SHELL, "SIGBUS"),
    _m(
        "msg-windows-access-violation",
        "Exit code 3221225477 (0xC0000005)",
        [r"3221225477", r"0xc0000005", r"-1073741819"],
        "Windows NTSTATUS codes, December 2026",
    ),
    _m(
        "msg-jupyterhub-server-not-running",
        "JupyterHub: server not running",
        [r"server (is )?not running"],
        "JupyterHub 5, December 2026",
    ),
    # last: a bare "Killed" would otherwise take lines that say more
    _m(
        "msg-killed",
        "Killed",
        [_SHELL + r"killed( +.*)?$"],
        _CHECKED_SHELL,
        "SIGKILL",
    ),
]

BY_ID = {m["id"]: m for m in MESSAGES}

_PREFIXES = [re.compile(p, re.IGNORECASE) for p in PREFIXES]
_QUOTES = re.compile(QUOTES)
_ENDING = re.compile(ENDING)
_COMPILED = [(m, [re.compile(p, re.IGNORECASE) for p in m["patterns"]]) for m in MESSAGES]


def normalise(line: str) -> str:
    """One pasted line without a log's or a terminal's prefix, quotes and final period."""
    line = " ".join(str(line)[:MAX_LINE].split())
    changed = True
    while changed and line:
        changed = False
        for prefix in _PREFIXES:
            cut = prefix.match(line)
            if cut and cut.end():
                line = line[cut.end() :]
                changed = True
        stripped = _ENDING.sub("", _QUOTES.sub("", line)).strip()
        changed = changed or stripped != line
        line = stripped
    return line


def lines_of(text: str) -> list:
    """The paste's lines, normalised, empty ones dropped; all of it joined as the last."""
    lines = [normalise(line) for line in str(text).splitlines()[:MAX_LINES]]
    lines = [line for line in lines if line]
    if len(lines) > 1:  # a message wrapped over lines by the interface
        lines.append(" ".join(lines))
    return lines


def find(text: str) -> Optional[Message]:
    """The entry for a pasted message (the first of the table that finds a line), or None."""
    lines = lines_of(text)
    for message, patterns in _COMPILED:
        for line in lines:
            if any(p.search(line) for p in patterns):
                return message
    return None


def site_table() -> dict:
    """What the site's paste box needs, as JSON-ready data (the same patterns, in order)."""
    return {
        "prefixes": PREFIXES,
        "quotes": QUOTES,
        "ending": ENDING,
        "maxLines": MAX_LINES,
        "maxLine": MAX_LINE,
        "messages": [
            {"id": m["id"], "heading": m["heading"], "patterns": m["patterns"]} for m in MESSAGES
        ],
    }
