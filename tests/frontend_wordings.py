"""What the frontends really print when a kernel dies, as their sources word it.

Each entry was checked against the frontend's source (``source``: the repository and
where the string lives) or, for shells, is read from this system's C library at test
time. ``raw`` is the string as the source has it; ``args`` fills its placeholders the
way ``docs/by-message.rst`` writes them (PATH, X, N); ``shown`` is the part a user
reads first, the page's heading. A reworded heading no longer matches.
"""

# (frontend, raw source string, {placeholder: page's stand-in}, shown, source)
FRONTENDS = [
    {
        "frontend": "JupyterLab / Notebook 7",
        "raw": "The kernel for %1 appears to have died. It will restart automatically.",
        "args": {"%1": "PATH"},
        "shown": "The kernel for PATH appears to have died. It will restart automatically.",
        "source": "jupyterlab/jupyterlab packages/notebook/src/panel.ts "
        "(dialog 'Kernel Restarting')",
    },
    {
        "frontend": "JupyterLab / Notebook 7",
        "raw": "Error Starting Kernel",
        "args": {},
        "shown": "Error Starting Kernel",
        "source": "jupyterlab/jupyterlab packages/apputils/src/sessioncontext.tsx (dialog title)",
    },
    {
        "frontend": "JupyterLab / Notebook 7 on JupyterHub",
        "raw": "Server unavailable or unreachable",
        "args": {},
        "shown": "Server unavailable or unreachable",
        "source": "jupyterlab/jupyterlab packages/hub-extension/src/index.ts (dialog title; "
        "body 'Your server at %1 is not running. Would you like to restart it?')",
    },
    {
        "frontend": "Notebook 6",
        "raw": "The kernel has died, and the automatic restart has failed. It is possible the "
        "kernel cannot be restarted.",
        "args": {},
        "shown": "The kernel has died, and the automatic restart has failed.",
        "source": "jupyter/notebook 6.x notebook/static/notebook/js/notificationarea.js",
    },
    {
        "frontend": "VS Code",
        # Older releases read "in the the current cell"; the heading has today's wording.
        "raw": "The Kernel crashed while executing code in the current cell or a previous "
        "cell. Please review the code in the cell(s) to identify a possible cause of the "
        "failure.",
        "args": {},
        "shown": "The Kernel crashed while executing code in the current cell or a previous cell.",
        "source": "microsoft/vscode-jupyter src/platform/common/utils/localize.ts "
        "(DataScience.kernelCrashedDueToCodeInCurrentOrPreviousCell, as shown in cells)",
    },
    {
        "frontend": "VS Code",
        "raw": "The kernel '{0}' died and is being automatically restarted by Jupyter. "
        "Click [here](https://aka.ms/vscodeJupyterKernelCrash) for more info.",
        "args": {"{0}": "X"},
        "shown": "The kernel 'X' died and is being automatically restarted by Jupyter.",
        "source": "microsoft/vscode-jupyter src/platform/common/utils/localize.ts "
        "(kernelDiedWithoutErrorAndAutoRestarting)",
    },
    {
        "frontend": "VS Code",
        "raw": "Cannot run cells, as the kernel '{0}' is dead.",
        "args": {"{0}": "X"},
        "shown": "Cannot run cells, as the kernel 'X' is dead.",
        "source": "microsoft/vscode-jupyter src/platform/common/utils/localize.ts "
        "(cannotRunCellKernelIsDead)",
    },
    {
        "frontend": "VS Code (from @jupyterlab/services)",
        "raw": "Canceled future for {msg_type} message before replies were done",
        "args": {"{msg_type}": "execute_request"},
        "shown": "Canceled future for execute_request message before replies were done",
        "source": "jupyterlab/jupyterlab packages/services/src/kernel/future.ts "
        "(matched as such in microsoft/vscode-jupyter)",
    },
    {
        "frontend": "VS Code (Jupyter log)",
        "raw": "Kernel died with exit code {exitCode}. {reason}",
        "args": {"{exitCode}": "-9"},
        "shown": "Kernel died with exit code -9",
        "source": "microsoft/vscode-jupyter src/kernels/errors (KernelProcessExitedError)",
    },
]

# Platforms' own banners (checked facts in FACTS.md, from their products).
PLATFORMS = [
    "Kernel last terminated by signal SIGKILL.",
    "Kernel last terminated by signal SIGSEGV.",
    "Kernel last exited with code 1.",
    "Your session crashed after using all available RAM",
    "Your notebook tried to allocate more memory than is available. It has restarted.",
    "The Python process exited with exit code 137 (SIGKILL: Killed). This may have been "
    "caused by an OOM error.",
]

# What a shell prints for a child ended by a signal: the C library's description.
SHELL_SIGNALS = ["SIGKILL", "SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL"]
# Signals whose default action dumps core: the shell adds this when it did.
CORE = " (core dumped)"
CORE_SIGNALS = {"SIGSEGV", "SIGABRT"}


def rendered(entry):
    text = entry["raw"]
    for placeholder, value in entry["args"].items():
        text = text.replace(placeholder, value)
    return text
