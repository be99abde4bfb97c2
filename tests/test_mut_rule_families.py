"""The rules on recorded deaths (``wizard.diagnosis.rules_deaths``), each finding whole:
message, hint, commands, evidence and the signal section it points to."""

import pytest

from wizard.base import invocation
from wizard.diagnosis import deathtext, rules_deaths

NOW = 1_700_000_000.0


@pytest.fixture(autouse=True)
def prog(monkeypatch):
    monkeypatch.setenv("WIZARD_PROG", "kw")
    invocation.force(None)


def death(cause, signal=None, notebook="/n/a.ipynb", t=NOW - 60, **extra):
    return {
        "cause": cause,
        "signal": signal,
        "exit_code": None if signal else 1,
        "notebook": notebook,
        "kernel_name": "python3",
        "time": t,
        "pid": 4242,
        **extra,
    }


def facts(*deaths, kernels=()):
    return {"now": NOW, "deaths": list(deaths), "kernels": {"kernels": list(kernels)}}


KERNEL = {"pid": 77, "notebook": "/n/b.ipynb", "execution_state": "idle", "idle_seconds": 5}


def test_recorded_oom_whole_finding():
    d = death("oom-kill", "SIGKILL", detail="the kernel log")
    older = death("signal", "SIGSEGV", notebook="/n/old.ipynb", t=NOW - 600)
    shut = death("shutdown", notebook="/n/s.ipynb", t=NOW - 30)
    f = facts(shut, d, older, kernels=[KERNEL])
    assert rules_deaths.recorded_oom(f) == {
        "message": deathtext.describe(d, NOW) + ".",
        "hint": "It ran out of memory: halt the notebooks you are not using, or make the "
        "calculation smaller, then run it again.",
        "commands": ["kw halt /n/b.ipynb", "kw history"],
        "evidence": [
            "how it is known: the kernel log",
            deathtext.describe(shut, NOW),
            deathtext.describe(older, NOW),
        ],
        "signal_anchor": "signal-sigkill",
    }


def test_recorded_sigkill_without_an_oom_kill():
    d = death("signal", "SIGKILL")
    got = rules_deaths.recorded_oom(facts(d))
    assert got["hint"] == (
        "Killed outright, with no OOM kill counted: something stopped it by force (kill -9, "
        "a restart that timed out)."
    )
    assert got["commands"] == ["kw history"] and got["evidence"] == []
    assert got["message"] == deathtext.describe(d, NOW) + "."


def test_evidence_holds_at_most_four_other_deaths():
    d = death("oom-kill", "SIGKILL")
    others = [death("exit", notebook=f"/n/{i}.ipynb", t=NOW - 100 - i) for i in range(6)]
    got = rules_deaths.recorded_oom(facts(d, *others))
    assert got["evidence"] == [deathtext.describe(x, NOW) for x in others[:4]]


@pytest.mark.parametrize(
    "deaths",
    [(), (death("shutdown"),), (death("exit"),), (death("signal", "SIGSEGV"),)],
)
def test_recorded_oom_only_for_a_kill(deaths):
    assert rules_deaths.recorded_oom(facts(*deaths)) is None
    assert rules_deaths.recorded_oom({}) is None


def test_recorded_native_whole_finding():
    d = death("signal", "SIGSEGV", notebook="/n/my nb.ipynb")
    assert rules_deaths.recorded_native(facts(d)) == {
        "message": deathtext.describe(d, NOW) + ".",
        "hint": "Native code in a library crashed, not Jupyter: run the same code outside "
        "Jupyter to see the crash, then upgrade or report that library.",
        "commands": ["kw run '/n/my nb.ipynb'", "kw history"],
        "evidence": [],
        "signal_anchor": "signal-sigsegv",
    }


@pytest.mark.parametrize(
    "d",
    [
        death("signal", "SIGKILL"),
        death("signal", "SIGTERM"),
        death("signal", "SIGNOPE"),
        death("exit", "SIGSEGV"),
        death("oom-kill", "SIGSEGV"),
    ],
)
def test_recorded_native_only_for_a_native_signal(d):
    assert rules_deaths.recorded_native(facts(d)) is None
    assert rules_deaths.recorded_native(facts()) is None


def test_recorded_exit_whole_finding():
    d = death("exit", detail="exit status from the provisioner")
    assert rules_deaths.recorded_exit(facts(d)) == {
        "message": deathtext.describe(d, NOW) + ".",
        "hint": "It ended by itself: right after a start this usually means it could not start.",
        "commands": ["jupyter kernelspec list"],
        "evidence": ["how it is known: exit status from the provisioner"],
        "signal_anchor": "exit-code",
    }
    assert rules_deaths.recorded_exit(facts(death("signal", "SIGSEGV"))) is None
    assert rules_deaths.recorded_exit(facts()) is None


def test_death_finding_uses_facts_now():
    d = death("exit")
    f = {"deaths": [d]}
    assert rules_deaths.death_finding(d, f, "h", ["c"], "a")["message"] == (
        deathtext.describe(d, None) + "."
    )
