"""Rules on what the message said: a signal, an exit code, or a stop on request."""

from wizard.base.invocation import command
from wizard.diagnosis import rules_memory
from wizard.diagnosis.common import WARNING, banner_cause, run_outside


def banner_sigkill(facts):
    b = facts.get("banner")
    if not b or b.get("signal") != "SIGKILL":
        return None
    if facts.get("_oom_evidence"):
        return {
            "message": "The kernel was killed with SIGKILL, and the memory evidence above says "
            "why: the out-of-memory killer.",
            "hint": "Free memory (the commands above), then run the notebook again.",
            "signal_anchor": b["row"]["anchor"],
        }
    return {
        "severity": WARNING,
        "message": "The kernel was killed with SIGKILL, but no out-of-memory kill is on record "
        "here: a forced kill or a restart (kill -9, a stopped project, a restart that timed "
        "out), or a kill this machine's view does not show (the OOM killer of another cgroup, "
        "or a userspace killer such as systemd-oomd or earlyoom).",
        "hint": "Check the Jupyter server's log for a restart at that time and whether "
        "systemd-oomd or earlyoom runs here (journalctl -u systemd-oomd, journalctl -u "
        "earlyoom); if neither, start the recorder to catch the next one.",
        "commands": [command("watch")],
        "signal_anchor": b["row"]["anchor"],
    }


def banner_native(facts):
    b = facts.get("banner")
    if not b or banner_cause(facts) != "native":
        return None
    return {
        "message": f"The kernel died of {b['signal']}: native code in a library crashed, "
        "not Jupyter.",
        "hint": "Run the same code outside Jupyter to see the crash itself, then upgrade or "
        "report the library whose code was running.",
        "commands": [run_outside(facts)],
        "signal_anchor": b["row"]["anchor"],
    }


def banner_exit(facts):
    b = facts.get("banner")
    if not b or b.get("kind") != "exit":
        return None
    return {
        "message": f"The kernel exited with code {b['code']}: usually it could not start.",
        "hint": "Check the kernelspec below and the kernel's error output.",
        "commands": ["jupyter kernelspec list"],
        "signal_anchor": b["row"]["anchor"],
    }


def stopped_on_purpose(facts):
    b = facts.get("banner")
    if not facts.get("intentional") and not (b and b.get("signal") == "SIGTERM"):
        return None
    if not facts.get("intentional") and rules_memory.earlyoom_sigterm(facts):
        return None  # earlyoom's SIGTERM: a kill for memory, not a clean shutdown
    return {
        "message": "The kernel was stopped on purpose (a shutdown or restart): the message "
        "only confirms it.",
        "hint": "Nothing to fix. Start the kernel again when you need it.",
        "signal_anchor": b["row"]["anchor"] if b and b.get("row") else None,
    }
