"""Rules on the deaths the recorder saw: they lead the verdict when there are any."""

from wizard.base.invocation import command
from wizard.diagnosis.common import (
    halt_commands,
    kernels_of,
    last_crash,
    run_outside,
)


def death_finding(d, facts, hint, commands, anchor):
    from wizard.diagnosis import deathtext

    now = facts.get("now")
    evidence = []
    if d.get("detail"):
        evidence.append(f"how it is known: {d['detail']}")
    evidence += [deathtext.describe(x, now) for x in (facts.get("deaths") or []) if x is not d][:4]
    return {
        "message": deathtext.describe(d, now) + ".",
        "hint": hint,
        "commands": commands,
        "evidence": evidence,
        "signal_anchor": anchor,
    }


def recorded_oom(facts):
    d = last_crash(facts)
    if not d or not (d["cause"] == "oom-kill" or d.get("signal") == "SIGKILL"):
        return None
    hint = (
        "It ran out of memory: halt the notebooks you are not using, or make the calculation "
        "smaller, then run it again."
        if d["cause"] == "oom-kill"
        else "Killed outright, with no OOM kill counted: something stopped it by force (kill -9, "
        "a restart that timed out)."
    )
    cmds = [*halt_commands(kernels_of(facts)), command("history")]
    return death_finding(d, facts, hint, cmds, "signal-sigkill")


def recorded_native(facts):
    from wizard.diagnosis import signals

    d = last_crash(facts)
    row = signals.BY_NAME.get(d.get("signal")) if d and d["cause"] == "signal" else None
    if not row or row["cause"] != "native":
        return None
    hint = (
        "Native code in a library crashed, not Jupyter: run the same code outside Jupyter to "
        "see the crash, then upgrade or report that library."
    )
    return death_finding(d, facts, hint, [run_outside(facts), command("history")], row["anchor"])


def recorded_exit(facts):
    d = last_crash(facts)
    if not d or d["cause"] != "exit":
        return None
    hint = "It ended by itself: right after a start this usually means it could not start."
    return death_finding(d, facts, hint, ["jupyter kernelspec list"], "exit-code")
