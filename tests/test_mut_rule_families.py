"""The rule families (``wizard.diagnosis.rules_deaths``, ``rules_banner``, ``rules_kernels``,
``rules_memory``), each finding whole: message, hint, commands, severity, evidence and the
signal section it points to."""

import time

import pytest

from wizard.base import invocation
from wizard.diagnosis import (
    deathtext,
    rules_banner,
    rules_deaths,
    rules_kernels,
    rules_memory,
    victim,
)

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


# --- what the banner said (``wizard.diagnosis.rules_banner``) ---

ROW = {"anchor": "signal-sigkill", "cause": "oom"}


def banner(signal=None, kind="signal", code=None, row=ROW):
    b = {"signal": signal, "kind": kind, "code": code}
    if row is not None:
        b["row"] = row
    return b


def test_banner_sigkill_with_memory_evidence():
    f = {"banner": banner("SIGKILL"), "_oom_evidence": True}
    assert rules_banner.banner_sigkill(f) == {
        "message": "The kernel was killed with SIGKILL, and the memory evidence above says "
        "why: the out-of-memory killer.",
        "hint": "Free memory (the commands above), then run the notebook again.",
        "signal_anchor": "signal-sigkill",
    }


def test_banner_sigkill_without_memory_evidence():
    f = {"banner": banner("SIGKILL"), "_oom_evidence": False}
    assert rules_banner.banner_sigkill(f) == {
        "severity": "warning",
        "message": "The kernel was killed with SIGKILL, but no out-of-memory kill is on record "
        "here: a forced kill or a restart (kill -9, a stopped project, a restart that timed "
        "out), or a kill this machine's view does not show (the OOM killer of another cgroup, "
        "or a userspace killer such as systemd-oomd or earlyoom).",
        "hint": "Check the Jupyter server's log for a restart at that time and whether "
        "systemd-oomd or earlyoom runs here (journalctl -u systemd-oomd, journalctl -u "
        "earlyoom); if neither, start the recorder to catch the next one.",
        "commands": ["kw watch"],
        "signal_anchor": "signal-sigkill",
    }


def test_banner_sigkill_only_for_sigkill():
    assert rules_banner.banner_sigkill({}) is None
    assert rules_banner.banner_sigkill({"banner": {}}) is None
    assert rules_banner.banner_sigkill({"banner": banner("SIGSEGV")}) is None


NATIVE = {"anchor": "signal-sigsegv", "cause": "native"}


def test_banner_native_whole_finding():
    f = {"banner": banner("SIGSEGV", row=NATIVE), "deaths": [death("signal", "SIGSEGV")]}
    assert rules_banner.banner_native(f) == {
        "message": "The kernel died of SIGSEGV: native code in a library crashed, not Jupyter.",
        "hint": "Run the same code outside Jupyter to see the crash itself, then upgrade or "
        "report the library whose code was running.",
        "commands": ["kw run /n/a.ipynb"],
        "signal_anchor": "signal-sigsegv",
    }
    assert rules_banner.banner_native({"banner": banner("SIGSEGV", row=NATIVE)})["commands"] == [
        "kw run YOUR_NOTEBOOK.ipynb"
    ]


def test_banner_native_only_for_a_native_cause():
    assert rules_banner.banner_native({}) is None
    assert rules_banner.banner_native({"banner": banner("SIGKILL")}) is None
    assert rules_banner.banner_native({"banner": banner("SIGSEGV", row=None)}) is None


def test_banner_exit_whole_finding():
    row = {"anchor": "exit-code", "cause": "cannot-start"}
    f = {"banner": banner(kind="exit", code=2, row=row)}
    assert rules_banner.banner_exit(f) == {
        "message": "The kernel exited with code 2: usually it could not start.",
        "hint": "Check the kernelspec below and the kernel's error output.",
        "commands": ["jupyter kernelspec list"],
        "signal_anchor": "exit-code",
    }
    assert rules_banner.banner_exit({}) is None
    assert rules_banner.banner_exit({"banner": banner("SIGKILL")}) is None


STOPPED = {
    "message": "The kernel was stopped on purpose (a shutdown or restart): the message "
    "only confirms it.",
    "hint": "Nothing to fix. Start the kernel again when you need it.",
}
TERM_ROW = {"anchor": "signal-sigterm", "cause": "stopped"}


def earlyoom_kill(**extra):
    return {
        "killer": "earlyoom",
        "signal": "SIGTERM",
        "time": NOW - 60,
        "name": "python",
        "pid": 9,
        "uid": 1000,
        **extra,
    }


def test_stopped_on_purpose():
    got = rules_banner.stopped_on_purpose
    assert got({"intentional": True}) == {**STOPPED, "signal_anchor": None}
    assert got({"banner": banner("SIGTERM", row=TERM_ROW)}) == {
        **STOPPED,
        "signal_anchor": "signal-sigterm",
    }
    assert got({"banner": banner("SIGTERM", row=None)}) == {**STOPPED, "signal_anchor": None}
    assert got({"intentional": True, "banner": banner("SIGKILL")}) == {
        **STOPPED,
        "signal_anchor": "signal-sigkill",
    }
    assert got({}) is None
    assert got({"banner": banner("SIGKILL")}) is None


def test_stopped_on_purpose_not_for_earlyoom_sigterm():
    mem = {"userspace_oom": {"kills": [earlyoom_kill()]}}
    f = {"now": NOW, "banner": banner("SIGTERM", row=TERM_ROW), "memory": mem}
    assert rules_banner.stopped_on_purpose(f) is None
    assert rules_banner.stopped_on_purpose({**f, "intentional": True}) == {
        **STOPPED,
        "signal_anchor": "signal-sigterm",
    }


# --- kernels, kernelspecs and servers (``wizard.diagnosis.rules_kernels``) ---

MIB = 1 << 20


def kernel(i, idle_seconds=3600, rss=200 * MIB, **extra):
    return {
        "pid": 100 + i,
        "notebook": f"/n/k{i}.ipynb",
        "execution_state": "idle",
        "idle_seconds": idle_seconds,
        "rss_bytes": rss,
        **extra,
    }


def test_idle_kernels_whole_finding():
    ks = [kernel(0), kernel(1, notebook=None), kernel(2), kernel(3), kernel(4, idle_seconds=10)]
    assert rules_kernels.idle_kernels({"kernels": {"kernels": ks}}) == {
        "message": "4 kernel(s) idle for over 15m hold 800 MiB: /n/k0.ipynb, pid 101, "
        "/n/k2.ipynb, ....",
        "hint": "Closing a tab does not stop a kernel: shut down the ones you are not using.",
        "commands": ["kw halt --idle 15m", "kw halt /n/k0.ipynb", "kw halt 101"],
    }


def test_idle_kernels_three_and_none():
    ks = [kernel(0), kernel(1), kernel(2, rss=100 * MIB)]
    got = rules_kernels.idle_kernels({"kernels": {"kernels": ks}})
    assert got["message"] == (
        "3 kernel(s) idle for over 15m hold 500 MiB: /n/k0.ipynb, /n/k1.ipynb, /n/k2.ipynb."
    )
    assert rules_kernels.idle_kernels({"kernels": {"kernels": [kernel(0, idle_seconds=5)]}}) is None
    assert rules_kernels.idle_kernels({}) is None


def test_many_kernels_whole_finding():
    ks = [kernel(i, idle_seconds=5, rss=200) for i in range(4)] + [kernel(4, rss=None)]
    ks[0]["rss_bytes"] = 423  # 1023 bytes in all: one more would read 1.0 KiB
    ks[1]["execution_state"] = "busy"
    assert rules_kernels.many_kernels({"kernels": {"kernels": ks}}) == {
        "message": "5 kernels are running, holding 1023 B.",
        "hint": "Each open notebook keeps its kernel and its memory until it is shut down.",
        "commands": ["kw halt /n/k0.ipynb"],
    }
    assert rules_kernels.many_kernels({"kernels": {"kernels": ks[:4]}}) is None


def test_spec_problem():
    assert rules_kernels.spec_problem({"problem": "p", "deep": {"detail": "d"}}) == "p"
    assert rules_kernels.spec_problem({"deep": {"detail": "d"}}) == "d"
    assert rules_kernels.spec_problem({"deep": {}}) == "cannot start"
    assert rules_kernels.spec_problem({}) == "cannot start"


def test_kernelspec_broken_whole_finding():
    specs = [
        {"name": "good", "ok": True, "deep": {"ok": True}},
        {
            "name": "my env",
            "ok": False,
            "problem": "No module named ipykernel",
            "argv0_path": "/opt/my py/bin/python",
        },
        {
            "name": "twin",
            "ok": False,
            "problem": "ipykernel missing",
            "argv0_path": "/opt/my py/bin/python",
        },
        {"name": "deep", "ok": True, "deep": {"ok": False, "detail": "ipykernel too old"}},
        {"name": "noargv", "ok": False, "problem": "ipykernel missing"},
        {"name": "other", "ok": False, "problem": "no such file", "argv0_path": "/usr/bin/x"},
    ]
    assert rules_kernels.kernelspec_broken({"kernelspecs": {"kernelspecs": specs}}) == {
        "message": "Kernelspec 'my env': No module named ipykernel (and 4 more).",
        "hint": "A kernel that cannot start dies at once: reinstall it, or remove the broken spec.",
        "commands": [
            "jupyter kernelspec list",
            "'/opt/my py/bin/python' -m pip install ipykernel",
            "jupyter kernelspec remove -y 'my env'",
        ],
        "evidence": [
            "my env: No module named ipykernel",
            "twin: ipykernel missing",
            "deep: ipykernel too old",
            "noargv: ipykernel missing",
            "other: no such file",
        ],
    }


def test_kernelspec_broken_one_and_none():
    one = [{"name": "x", "ok": True, "deep": {"ok": False}}, {"name": "y", "ok": True}]
    got = rules_kernels.kernelspec_broken({"kernelspecs": {"kernelspecs": one}})
    assert got["message"] == "Kernelspec 'x': cannot start."
    assert got["commands"] == ["jupyter kernelspec list", "jupyter kernelspec remove -y x"]
    assert got["evidence"] == ["x: cannot start"]
    two = [{"name": "a", "ok": False, "problem": "p"}, {"name": "b", "ok": False}]
    got = rules_kernels.kernelspec_broken({"kernelspecs": {"kernelspecs": two}})
    assert got["message"] == "Kernelspec 'a': p (and 1 more)."
    ok = [{"name": "y", "ok": True}, {"name": "z", "ok": True, "deep": {"ok": None}}]
    assert rules_kernels.kernelspec_broken({"kernelspecs": {"kernelspecs": ok}}) is None
    assert rules_kernels.kernelspec_broken({}) is None


def server(pid, alive=True, reachable=True, error=None, needs_password=None):
    return {
        "pid": pid,
        "alive": alive,
        "reachable": reachable,
        "error": error,
        "needs_password": needs_password,
    }


def servers(*ss):
    return {"servers": {"servers": list(ss)}}


def test_server_unreachable_hung():
    f = servers(
        server(1, alive=False, reachable=False),
        server(2, reachable=None),
        server(3, reachable=False, error="timed out"),
        server(4, reachable=False),
        server(5, error="403", needs_password=True),
    )
    assert rules_kernels.server_unreachable(f) == {
        "message": "A Jupyter server (pid 3) is running but does not answer: timed out.",
        "hint": "A hung server cannot restart kernels: save what you can, then restart it.",
    }
    f = servers(server(4, reachable=False))
    assert rules_kernels.server_unreachable(f)["message"] == (
        "A Jupyter server (pid 4) is running but does not answer: no reply."
    )


def test_server_unreachable_password_only():
    f = servers(
        server(6, error="401 Unauthorized"),
        server(7, error="401 Unauthorized", needs_password=True),
        server(8, alive=False, error="x", needs_password=True),
    )
    assert rules_kernels.server_unreachable(f) == {
        "severity": "warning",
        "message": "A Jupyter server (pid 7) needs a password, which the wizard does not have "
        "(the server has no token): its kernels' notebooks are not listed here.",
        "hint": "Shut a kernel down from that server's own page in the browser (Running, or "
        "Kernel > Shut Down Kernel), or halt it by its pid as listed above; to let the "
        "wizard see its notebooks, start the server with a token.",
    }


def test_server_unreachable_refused():
    f = servers(
        server(5, reachable=None, error="e"),
        server(6, error="400 Bad Request"),
        server(7, alive=False, error="x"),
    )
    assert rules_kernels.server_unreachable(f) == {
        "severity": "warning",
        "message": "A Jupyter server (pid 6) answers but refuses the wizard's requests: "
        "400 Bad Request; its kernels could not be listed.",
        "hint": "Check the server's log and its token or password settings; the kernels "
        "of that server are missing from this report.",
    }


def test_server_unreachable_none():
    assert rules_kernels.server_unreachable(servers(server(1), server(2, alive=False))) is None
    assert rules_kernels.server_unreachable({}) is None


PLAIN = (
    "If the notebook works in a plain Jupyter server, the usual interface is at fault, "
    "not the code."
)


def test_plain_server():
    got = rules_kernels.plain_server
    found = [{"id": "other"}, {"id": "no-memory-evidence"}]
    cmd = {"servers": {"fallback": {"command": "python -m jupyter lab"}}}
    assert got({"_found": found, **cmd}) == {
        "message": PLAIN,
        "hint": "Start a plain Jupyter server and open the notebook there.",
        "commands": ["python -m jupyter lab"],
    }
    cocalc = {"servers": {"fallback": {"command": "x", "cocalc": True}}}
    assert got({"_found": [{"id": "native-crash"}], **cocalc}) == {
        "message": PLAIN,
        "hint": "In CoCalc: Project Settings, then Plain Jupyter Server; open the notebook there.",
        "commands": [],
    }
    assert got({"_found": [{"id": "native-crash"}]}) == {
        "message": PLAIN,
        "hint": "No Jupyter server is installed in this Python: install one to compare.",
        "commands": [],
    }
    assert got({"_found": found, "intentional": True, **cmd}) is None
    assert got({"_found": [{"id": "other"}], **cmd}) is None
    assert got(cmd) is None


# --- memory (``wizard.diagnosis.rules_memory``) ---

HALT = (
    "Memory ran out: halt the notebooks you are not using, or make the calculation "
    "smaller, then restart the kernel."
)


def at(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def kill(pid, t=NOW - 120, **extra):
    return {"pid": pid, "name": "python", "time": t, **extra}


def mem_facts(kernels=(), **mem):
    return {"now": NOW, "memory": mem, "kernels": {"kernels": list(kernels)}}


def test_oom_kills_count_in_the_cgroup():
    ks = [kernel(0, idle_seconds=5)]
    assert rules_memory.oom_kills(mem_facts(ks, oom_kills=1, cgroup={"path": "/a"})) == {
        "message": "The out-of-memory killer has ended 1 process in this container (cgroup).",
        "hint": HALT,
        "commands": ["kw halt /n/k0.ipynb"],
        "evidence": [],
    }
    got = rules_memory.oom_kills(mem_facts(oom_kills=3, host_oom_kills=9))
    assert got["message"] == (
        "The out-of-memory killer has ended 3 processes in this container (cgroup)."
    )
    assert got["commands"] == []


def test_oom_kills_on_the_host():
    got = rules_memory.oom_kills(mem_facts(host_oom_kills=2))
    assert got["message"] == (
        "The out-of-memory killer has ended 2 processes on this machine since it started."
    )
    assert rules_memory.oom_kills(mem_facts(host_oom_kills=2, cgroup={"path": "/a"})) is None
    assert rules_memory.oom_kills(mem_facts(oom_kills=0)) is None
    assert rules_memory.oom_kills({"now": NOW}) is None


def test_oom_kills_recent_in_the_log():
    log = [kill(i, t=NOW - 1000 + i) for i in range(6)]
    log[5].update(rss_bytes=3 * MIB, memcg="/k", limit_memcg="/")
    old = kill(99, t=NOW - 2 * 86400)
    untimed = {"pid": 98, "name": "x"}
    elsewhere = [kill(50 + i) for i in range(4)]
    f = mem_facts(oom_kills=0, oom_log=[old, untimed, *log], oom_log_elsewhere=elsewhere)
    last = (
        f"killed python (pid 5) {at(NOW - 995)}, 3.0 MiB resident in cgroup /k "
        "(the limit of cgroup / was hit)"
    )
    got = rules_memory.oom_kills(f)
    assert got["message"] == (
        f"The kernel log shows 6 out-of-memory kill(s) in the last day. Last: {last}."
    )
    assert got["evidence"] == [
        *[f"killed python (pid {i}) {at(NOW - 1000 + i)}" for i in range(1, 5)],
        last,
        *[
            f"elsewhere on this machine (not this cgroup): killed python (pid {50 + i}) "
            f"{at(NOW - 120)}"
            for i in range(1, 4)
        ],
    ]
    assert got["hint"] == HALT


def test_oom_kills_group_kills():
    log = [{"pid": 1}, {"pid": 2}, {"pid": 2}]
    got = rules_memory.oom_kills(mem_facts(oom_kills=3, oom_group_kills=1, oom_log=log))
    assert got["message"] == (
        "The out-of-memory killer has ended 2 processes in this container (cgroup), "
        "1 group kill(s) among them (memory.events counts 3)."
    )
    got = rules_memory.oom_kills(mem_facts(oom_kills=2, oom_group_kills=1, oom_log=log[:1]))
    assert got["message"] == (
        "The out-of-memory killer has ended 1 process in this container (cgroup), "
        "1 group kill(s) among them (memory.events counts 2)."
    )
    got = rules_memory.oom_kills(mem_facts(oom_kills=2, oom_group_kills=1, oom_log=log))
    assert got["message"] == (
        "The out-of-memory killer has ended 2 processes in this container (cgroup), "
        "1 group kill(s) among them (memory.events counts 2)."
    )
    got = rules_memory.oom_kills(mem_facts(oom_kills=1, oom_group_kills=1, oom_log=log))
    assert got["message"] == (
        "The out-of-memory killer has ended 1 process in this container (cgroup). "
        "1 of them were group kill(s) (memory.oom.group)."
    )
    got = rules_memory.oom_kills(mem_facts(oom_kills=2, oom_group_kills=2))
    assert got["message"] == (
        "The out-of-memory killer has ended 2 processes in this container (cgroup). "
        "2 of them were group kill(s) (memory.oom.group)."
    )


def test_oom_kills_oom_group_set():
    got = rules_memory.oom_kills(mem_facts(oom_kills=1, oom_group=True))
    assert got["message"] == (
        "The out-of-memory killer has ended 1 process in this container (cgroup). "
        "memory.oom.group is set: one out-of-memory kill ends every process in the "
        "cgroup (on Kubernetes 1.28+ that is the whole user server, so the page then "
        "says the server is not running)."
    )


def restarted(started=NOW - 110):
    return kernel(0, idle_seconds=5, started=started, connection_file_mtime=started - 100)


def test_oom_kills_names_the_victim():
    k = restarted()
    gone = kill(7, rss_bytes=2 * MIB)
    f = mem_facts([k], oom_kills=1, oom_log=[gone], limit_bytes=4 * MIB, limit_source="cgroup")
    match = victim.matches(f)[-1]
    got = rules_memory.oom_kills(f)
    assert got["message"] == (
        victim.sentence(match, 4 * MIB)
        + ". The out-of-memory killer has ended 1 process in this container (cgroup). Last: "
        + f"killed python (pid 7) {at(NOW - 120)}, 2.0 MiB resident."
    )
    assert "holding 2.0 MiB of its 4.0 MiB limit" in got["message"]
    f["memory"]["limit_source"] = "host"
    assert rules_memory.oom_kills(f)["message"].startswith(victim.sentence(match) + ". ")
    assert "limit" not in rules_memory.oom_kills(f)["message"].split(" (")[0]


def test_oom_kills_only_in_a_kernels_own_cgroup():
    k = restarted()
    f = mem_facts([k], oom_log_kernels=[kill(7, t=NOW - 120)])
    match = victim.matches(f)[-1]
    assert rules_memory.oom_kills(f)["message"] == (
        victim.sentence(match) + ". The kernel log shows a kill in a kernel's own cgroup."
    )


def test_oom_kills_uses_the_clock_without_now():
    f = {"memory": {"oom_log": [kill(1, t=time.time() - 60)]}}
    assert rules_memory.oom_kills(f)["message"].startswith(
        "The kernel log shows 1 out-of-memory kill(s) in the last day."
    )


GIB = 1 << 30


def test_memory_near_limit():
    got = rules_memory.memory_near_limit(mem_facts(used_bytes=3 * GIB, limit_bytes=4 * GIB))
    assert got == {
        "severity": "warning",
        "message": "3.0 GiB of 4.0 GiB in use (75%, limit from unknown).",
        "hint": "A kernel that asks for more memory now will be killed: free memory before "
        "running it again.",
        "commands": ["top -o %MEM"],
    }
    f = mem_facts(
        [kernel(0, idle_seconds=5)],
        used_bytes=9 * GIB,
        limit_bytes=10 * GIB,
        limit_source="cgroup v1",
    )
    got = rules_memory.memory_near_limit(f)
    assert got["severity"] == "problem"
    assert got["message"] == "9.0 GiB of 10 GiB in use (90%, limit from cgroup v1)."
    assert got["commands"] == ["kw halt /n/k0.ipynb"]
    f = mem_facts(used_bytes=89 * GIB, limit_bytes=100 * GIB)
    assert rules_memory.memory_near_limit(f)["severity"] == "warning"
    assert rules_memory.memory_near_limit(mem_facts(used_bytes=74, limit_bytes=100)) is None
    assert rules_memory.memory_near_limit(mem_facts(used_bytes=74)) is None
    assert rules_memory.memory_near_limit({}) is None


def test_memory_pressure():
    got = rules_memory.memory_pressure(mem_facts(pressure={"some_avg10": 20.0}))
    assert got == {
        "message": "Processes waited for memory 20% of the last 10 seconds (memory pressure): "
        "the system is reclaiming memory hard.",
        "hint": "Expect slowness, then kills: free memory now.",
    }
    assert rules_memory.memory_pressure(mem_facts(pressure={"some_avg10": 19.9})) is None
    assert rules_memory.memory_pressure(mem_facts(pressure={})) is None
    assert rules_memory.memory_pressure({}) is None


def userspace(*kills, marks=None):
    u = {"kills": list(kills)}
    if marks:
        u["xattr_kills"] = marks
    return mem_facts(userspace_oom=u)


@pytest.mark.parametrize(
    "k, expected",
    [
        (earlyoom_kill(), True),
        (earlyoom_kill(time=None), True),
        (earlyoom_kill(ours=True), True),
        (earlyoom_kill(time=NOW - 86400), True),
        (earlyoom_kill(time=NOW - 86401), False),
        (earlyoom_kill(ours=False), False),
        (earlyoom_kill(signal="SIGKILL"), False),
        (earlyoom_kill(killer="systemd-oomd"), False),
    ],
)
def test_earlyoom_sigterm(k, expected):
    assert rules_memory.earlyoom_sigterm(userspace(k)) is expected


def test_earlyoom_sigterm_uses_the_clock_without_now():
    f = {"memory": {"userspace_oom": {"kills": [earlyoom_kill(time=time.time() - 100)]}}}
    assert rules_memory.earlyoom_sigterm(f) is True
    f = {"memory": {"userspace_oom": {"kills": [earlyoom_kill(time=time.time() - 90000)]}}}
    assert rules_memory.earlyoom_sigterm(f) is False
    assert rules_memory.earlyoom_sigterm({}) is False


USERSPACE_HINT = (
    "The machine ran low on memory and a userspace killer (not the kernel) acted, so the "
    "kernel log shows no kill: use less memory, or halt kernels you do not use."
)


def test_userspace_oom_kill_earlyoom_not_proven():
    k = earlyoom_kill(signal="SIGKILL", time=None)
    f = userspace(k, earlyoom_kill(ours=False), earlyoom_kill(time=NOW - 86401))
    f["kernels"] = {"kernels": [kernel(0, idle_seconds=5)]}
    line = "earlyoom sent SIGKILL to python (pid 9, uid 1000) at an unknown time"
    assert rules_memory.userspace_oom_kill(f) == {
        "severity": "warning",
        "message": "A userspace OOM killer ended a process of this user (possibly a kernel; "
        f"earlyoom watches the whole machine, not this cgroup): {line}.",
        "hint": USERSPACE_HINT,
        "commands": ["kw halt /n/k0.ipynb"],
        "evidence": [line],
    }


def test_userspace_oom_kill_proven_sigterm_and_marks():
    oomd = {
        "killer": "systemd-oomd",
        "cgroup": "/user.slice",
        "time": NOW - 10,
        "reason": "memory pressure 80%",
        "ours": True,
    }
    term = earlyoom_kill(time=NOW - 86400)
    f = userspace(term, oomd, marks={"/a": 2})
    lines = [
        f"earlyoom sent SIGTERM to python (pid 9, uid 1000) {at(NOW - 86400)}",
        f"systemd-oomd killed every process of /user.slice {at(NOW - 10)} (memory pressure 80%)",
        "systemd-oomd marked /a with user.oomd_kill=2 (its kill count there)",
    ]
    assert rules_memory.userspace_oom_kill(f) == {
        "severity": "problem",
        "message": f"A userspace OOM killer ended processes here: {lines[-1]}. A kernel that "
        "ended on that SIGTERM did not shut down cleanly.",
        "hint": USERSPACE_HINT,
        "commands": [],
        "evidence": lines,
    }
    got = rules_memory.userspace_oom_kill(userspace(marks={"/b": 1}))
    assert got["severity"] == "problem"
    assert got["message"] == (
        "A userspace OOM killer ended processes here: systemd-oomd marked /b with "
        "user.oomd_kill=1 (its kill count there)."
    )
    got = rules_memory.userspace_oom_kill(userspace(oomd))
    assert got["message"] == f"A userspace OOM killer ended processes here: {lines[1]}."


def test_userspace_oom_kill_evidence_holds_five():
    kills = [earlyoom_kill(pid=i, signal="SIGKILL", time=None) for i in range(7)]
    got = rules_memory.userspace_oom_kill(userspace(*kills))
    assert got["evidence"] == [
        f"earlyoom sent SIGKILL to python (pid {i}, uid 1000) at an unknown time"
        for i in range(2, 7)
    ]


def test_userspace_oom_kill_none():
    assert rules_memory.userspace_oom_kill(userspace(earlyoom_kill(ours=False))) is None
    assert rules_memory.userspace_oom_kill(userspace()) is None
    assert rules_memory.userspace_oom_kill({}) is None
    f = {"memory": {"userspace_oom": {"kills": [earlyoom_kill(time=time.time() - 100)]}}}
    assert rules_memory.userspace_oom_kill(f)["evidence"][0].startswith("earlyoom sent SIGTERM")
    f = {"memory": {"userspace_oom": {"kills": [earlyoom_kill(time=time.time() - 90000)]}}}
    assert rules_memory.userspace_oom_kill(f) is None


THROTTLED_HINT = (
    "Above memory.high work slows down sharply but is not killed (memory.max is the kill "
    "limit): use less memory, or ask for a higher memory.high."
)


def test_memory_throttled():
    f = mem_facts(
        [kernel(0, idle_seconds=5)],
        high_bytes=2 * GIB,
        high_events=4,
        high_path="/sys/fs/cgroup/u",
        pressure={"some_avg10": 12.4},
    )
    assert rules_memory.memory_throttled(f) == {
        "message": "memory.high is 2.0 GiB (set at /sys/fs/cgroup/u): the kernel throttled "
        "this cgroup 4 time(s) above it, reclaiming instead of killing. Processes waited for "
        "memory 12% of the last 10 seconds.",
        "hint": THROTTLED_HINT,
        "commands": ["kw halt /n/k0.ipynb"],
    }
    got = rules_memory.memory_throttled(mem_facts(high_bytes=0, high_events=1, limit_source="host"))
    assert got == {
        "message": "memory.high is 0 B (set at ?): the kernel throttled this cgroup 1 time(s) "
        "above it, reclaiming instead of killing.",
        "hint": "Above memory.high work slows down sharply but is not killed: use less "
        "memory, or ask for a higher memory.high.",
        "commands": [],
    }
    assert rules_memory.memory_throttled(mem_facts(high_bytes=GIB, high_events=0)) is None
    assert rules_memory.memory_throttled(mem_facts(high_events=3)) is None
    assert rules_memory.memory_throttled({}) is None


PIDS_HINT = (
    "Something forks too many processes (a multiprocessing pool, a thread per item): limit "
    "the workers, and halt kernels you do not use."
)


def test_pids_near_limit_own_cgroup():
    f = mem_facts(pids={"current": 80, "max": 100})
    assert rules_memory.pids_near_limit(f) == {
        "message": "80 processes of 100 allowed.",
        "hint": PIDS_HINT,
        "commands": ["ps -eLf | wc -l"],
    }
    f = mem_facts(pids={"current": 3, "max": 100, "events_max": 2})
    assert rules_memory.pids_near_limit(f)["message"] == (
        "3 processes of 100 allowed. The limit has refused to start a process 2 time(s)."
    )
    f = mem_facts(pids={"current": 3, "events_max": 1})
    assert rules_memory.pids_near_limit(f)["message"] == (
        "3 processes of None allowed. The limit has refused to start a process 1 time(s)."
    )
    assert rules_memory.pids_near_limit(mem_facts(pids={"current": 79, "max": 100})) is None
    assert rules_memory.pids_near_limit(mem_facts(pids={"current": 79})) is None
    assert rules_memory.pids_near_limit({}) is None


def test_pids_near_limit_kernels_own_cgroups():
    own = {"path": "/own"}
    ks = [
        {
            "pid": 1,
            "notebook": "/n/a.ipynb",
            "cgroup": {"path": "/own", "pids_max": 10, "pids_current": 10},
        },
        {
            "pid": 2,
            "kernel_id": "k-2",
            "cgroup": {"path": "/k2", "pids_max": 10, "pids_current": 9},
        },
        {"pid": 3, "cgroup": {"path": "/k2", "pids_max": 10, "pids_current": 10}},
        {"pid": 4, "cgroup": {"path": "/k4", "pids_current": 5, "pids_refused": 3}},
        {"pid": 5, "cgroup": {"path": "/k5", "pids_current": 50}},
        {"pid": 6, "cgroup": {"path": "/k6", "pids_max": 100, "pids_current": 50}},
        {"pid": 7},
    ]
    f = mem_facts(ks, cgroup=own, pids={"current": 1, "max": 100})
    assert rules_memory.pids_near_limit(f)["message"] == (
        "9 processes of 10 allowed in the kernel of k-2 (cgroup /k2). "
        "5 processes of None allowed in the kernel of pid 4 (cgroup /k4). "
        "The limit has refused to start a process 3 time(s)."
    )
    ks[1]["notebook"] = "/n/b.ipynb"
    assert rules_memory.pids_near_limit(f)["message"].startswith(
        "9 processes of 10 allowed in the kernel of /n/b.ipynb (cgroup /k2). "
    )


NO_MEMORY = {
    "message": "No sign of memory trouble: no out-of-memory kill recorded and memory is "
    "not near its limit.",
    "hint": "Rule out Jupyter: run the code in a terminal, then in a plain Jupyter server.",
}


def test_no_memory_evidence():
    got = rules_memory.no_memory_evidence
    f = {"_memory_evidence": False, "deaths": [death("signal", "SIGSEGV", notebook="/n/x y.ipynb")]}
    assert got(f) == {**NO_MEMORY, "commands": ["kw run '/n/x y.ipynb'"]}
    assert got({"_memory_evidence": False, "banner": banner("SIGKILL")}) == {
        **NO_MEMORY,
        "commands": ["kw run YOUR_NOTEBOOK.ipynb"],
    }
    for cause in ("native", "cannot-start", "stopped"):
        row = {"anchor": "a", "cause": cause}
        assert got({"_memory_evidence": False, "banner": banner("SIGX", row=row)}) is None
    assert got({"_memory_evidence": False, "intentional": True}) is None
    assert got({"_memory_evidence": True}) is None
    assert got({}) is None
