"""Read what the frontend's dead-kernel message said.

The frontends word it differently (see the ``kernel-signals`` page); what matters
for the verdict is whether it names a signal, an exit code, or only says that the
kernel "appears to have died".
"""

from wizard.diagnosis import messages, signals

# The wordings the interactive wizard offers, and what each one means.
CHOICES = [
    ("Kernel last terminated by signal SIGKILL.", "CoCalc, killed (often out of memory)"),
    ("Kernel last terminated by signal SIGSEGV.", "CoCalc, segmentation fault"),
    ("Kernel last exited with code 1.", "CoCalc, the kernel ended by itself"),
    (
        "The kernel appears to have died. It will restart automatically.",
        "JupyterLab / Notebook 7",
    ),
    (
        "The Kernel crashed while executing code in the current cell or a previous cell.",
        "VS Code",
    ),
]


def parse(text):
    """Return ``{"text", "kind", "signal", "code", "row", "entry"}`` for a pasted message.

    kind is "signal" (a signal was named, or the message implies one, as "Killed" or
    "Segmentation fault" do), "exit" (an exit code was named), or "died" (the frontend
    only knows the kernel is gone). ``row`` is the matching entry of
    ``signals.SIGNALS`` (None for "died"); ``entry`` the id of the message's entry
    in ``messages.MESSAGES`` (its anchor on the by-message page), or None.
    """
    found = messages.find(text)
    result = _parse(_flat(text))
    result["entry"] = found["id"] if found else None
    if result["kind"] == "died" and found and found["signal"]:
        row = signals.BY_NAME.get(found["signal"])
        if row:
            result.update(kind="signal", signal=row["name"], row=row)
    return result


def _flat(text):
    return " ".join(str(text).split())[:500]


def _parse(text):
    upper = text.upper()
    result = {"text": text, "kind": "died", "signal": None, "code": None, "row": None}
    for name, row in signals.BY_NAME.items():
        # "SIGKILL" or "signal 9"/"killed: 9" style wordings
        if name in upper or name[3:] + " SIGNAL" in upper:
            result.update(kind="signal", signal=name, row=row)
            return result
    words = upper.replace(".", " ").replace(",", " ").replace(":", " ").split()
    for i, word in enumerate(words):
        if word == "SIGNAL" and i + 1 < len(words) and words[i + 1].isdigit():
            row = signals.BY_NUMBER.get(int(words[i + 1]))
            if row:
                result.update(kind="signal", signal=row["name"], row=row)
                return result
        if word == "CODE" and i + 1 < len(words) and words[i + 1].lstrip("-").isdigit():
            code = int(words[i + 1])
            row = signals.BY_STATUS.get(code)
            if row:  # a shell-style status such as 137 is a signal in disguise
                result.update(kind="signal", signal=row["name"], code=code, row=row)
            else:
                result.update(kind="exit", code=code, row=signals.EXIT_CODE)
            return result
    return result
