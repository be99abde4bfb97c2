"""The rules, fed facts dicts directly: which findings fire, in which order, with what.

No probe runs here: each case is the facts a probe could hand over, and the exact
findings a user would read.
"""

import time

import pytest

from wizard.base import thresholds
from wizard.diagnosis import banner, rules

NOW = 1_800_000_000.0
MiB = 1 << 20


def facts(**over):
    base = {
        "now": NOW,
        "errors": [],
        "memory": {
            "limit_bytes": 1000 * MiB,
            "used_bytes": 100 * MiB,
            "limit_source": "cgroup v2 /pod",
            "cgroup": {"path": "/pod", "limit_path": "/pod", "limit_bytes": 1000 * MiB},
            "oom_kills": 0,
            "host_oom_kills": 0,
            "oom_log": [],
            "pressure": None,
            "pids": None,
        },
        "kernels": {"kernels": []},
        "servers": {"servers": [], "fallback": {"command": "jupyter server"}},
        "kernelspecs": {"kernelspecs": []},
        "deaths": [],
        "banner": None,
        "intentional": None,
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def kernel(pid, mib, idle=None, state="idle", notebook=None):
    return {
        "pid": pid,
        "rss_bytes": mib * MiB,
        "idle_seconds": idle,
        "execution_state": state if idle is not None or state == "busy" else None,
        "notebook": notebook or f"nb{pid}.ipynb",
        "kernel_id": f"{pid:08d}-aaaa",
        "started": NOW - 7200,
    }


def ids(found):
    return [f["id"] for f in found]


CASES = [
    ("nothing wrong", {}, ["no-memory-evidence", "try-plain-server"]),
    (
        "an OOM kill in our cgroup leads",
        {"memory": {"oom_kills": 2}},
        ["oom-kills-recorded"],
    ),
    (
        "use near the limit is a problem",
        {"memory": {"used_bytes": 950 * MiB}},
        ["memory-near-limit"],
    ),
    (
        "high use is a warning",
        {"memory": {"used_bytes": 800 * MiB}},
        ["memory-near-limit"],
    ),
    (
        "a refused fork",
        {"memory": {"pids": {"max": 100, "current": 20, "events_max": 3, "path": "/pod"}}},
        ["pids-near-limit", "no-memory-evidence", "try-plain-server"],
    ),
    (
        "a segfault named in the message",
        {"banner": banner.parse("Kernel last terminated by signal SIGSEGV.")},
        ["native-crash", "try-plain-server"],
    ),
    (
        "an exit code named in the message",
        {"banner": banner.parse("Kernel last exited with code 1.")},
        ["kernel-exit-code"],
    ),
    (
        "a stop on request",
        {"banner": banner.parse("Kernel last terminated by signal SIGTERM.")},
        ["stopped-on-purpose"],
    ),
]


@pytest.mark.parametrize("what, over, expected", CASES, ids=[c[0] for c in CASES])
def test_findings_for_facts(what, over, expected):
    f = facts(**over)
    found = rules.evaluate(f)
    assert ids(found) == expected
    assert f["errors"] == []
    for finding in found:
        assert finding["url"].endswith(f"#{finding['doc_label']}")
        assert finding["message"] and finding["hint"]


def test_severity_of_use_against_the_limit():
    near = rules.evaluate(facts(memory={"used_bytes": 950 * MiB}))[0]
    high = rules.evaluate(facts(memory={"used_bytes": 800 * MiB}))[0]
    assert (near["severity"], high["severity"]) == ("problem", "warning")
    assert near["message"].startswith("950 MiB of 1000 MiB in use (95%")


def test_severity_ranks_before_table_order():
    """A warning listed earlier in the table still comes after a problem."""
    idle = [kernel(1, 300, idle=thresholds.IDLE_SECONDS + 60)]
    f = facts(
        kernels={"kernels": idle},
        memory={"pids": {"max": 100, "current": 99, "events_max": 0, "path": "/pod"}},
    )
    found = rules.evaluate(f)
    order = {r["id"]: i for i, r in enumerate(rules.RULES)}
    assert order["idle-kernels"] < order["pids-near-limit"]  # the table puts idle first
    assert ids(found)[:2] == ["pids-near-limit", "idle-kernels"]
    assert [x["severity"] for x in found[:2]] == ["problem", "warning"]


def test_the_banner_moves_its_family_to_the_front():
    f = facts(
        memory={"used_bytes": 950 * MiB},
        kernelspecs={"kernelspecs": [{"name": "py", "ok": False, "problem": "gone"}]},
        banner=banner.parse("Kernel last exited with code 1."),
    )
    found = rules.evaluate(f)
    # both are problems; the message names an exit code, so "cannot start" leads
    assert ids(found)[:3] == ["kernel-exit-code", "kernelspec-broken", "memory-near-limit"]


def test_idle_kernels_are_those_halt_idle_would_halt():
    """One definition: idle by its server's word, not by age; busy never; big enough."""
    long = thresholds.IDLE_SECONDS + 60
    ks = [
        kernel(1, 300, idle=long),  # idle, big: counted
        kernel(2, 300, state="busy"),  # busy: never
        kernel(3, 300),  # no server reports on it: unknown, not idle
        kernel(4, 10, idle=long),  # idle but small
        kernel(5, 300, idle=60),  # not idle long enough
    ]
    found = {x["id"]: x for x in rules.evaluate(facts(kernels={"kernels": ks}))}
    assert found["idle-kernels"]["message"].startswith("1 kernel(s) idle for over 15m hold 300 MiB")
    assert "nb1.ipynb" in found["idle-kernels"]["message"]
    assert any("halt --idle 15m" in c for c in found["idle-kernels"]["commands"])


def test_no_halt_idle_offered_when_no_kernel_is_idle():
    ks = [kernel(i, 300) for i in range(1, 7)]  # many kernels, none known idle
    found = {x["id"]: x for x in rules.evaluate(facts(kernels={"kernels": ks}))}
    assert "idle-kernels" not in found
    assert not any("--idle" in c for c in found["many-kernels"]["commands"])


def test_sigkill_without_an_oom_record_says_so_once():
    f = facts(banner=banner.parse("Kernel last terminated by signal SIGKILL."))
    found = {x["id"]: x for x in rules.evaluate(f)}
    sigkill = found["killed-sigkill"]
    assert "no out-of-memory kill is on record" in sigkill["message"]
    assert "most often" not in sigkill["message"]
    assert sigkill["severity"] == "warning"


def test_sigkill_with_an_oom_record_names_the_oom_killer():
    f = facts(
        banner=banner.parse("Kernel last terminated by signal SIGKILL."), memory={"oom_kills": 1}
    )
    found = {x["id"]: x for x in rules.evaluate(f)}
    assert "the out-of-memory killer" in found["killed-sigkill"]["message"]
    assert "no out-of-memory kill" not in found["killed-sigkill"]["message"]
    assert "no-memory-evidence" not in found


def test_a_rule_that_raises_is_an_error_and_never_no_trouble():
    """Garbage no probe should produce: the memory rule fails, says so, and the verdict
    does not claim there is no memory trouble."""
    f = facts(memory={"used_bytes": "lots", "limit_bytes": 1000 * MiB})
    found = rules.evaluate(f)
    assert "no-memory-evidence" not in ids(found)
    failed = [e for e in f["errors"] if "memory-near-limit" in e["message"]]
    assert len(failed) == 1 and failed[0]["check"] == "memory"
    assert "TypeError" in failed[0]["message"]


def test_a_failed_rule_shows_in_the_report_and_marks_its_check():
    import io

    from wizard.report import jsonout, text
    from wizard.report.context import Context

    f = facts(memory={"used_bytes": "lots"})
    found = rules.evaluate(f)
    out = io.StringIO()
    text.write(Context(stdout=out, environ={"NO_COLOR": "1"}), f, found)
    shown = out.getvalue()
    assert "Checks that could not complete" in shown
    assert "memory: rule memory-near-limit failed" in shown
    assert text.check_status("memory", found, f) == "error"
    report = jsonout.report(f, found, "http://x/", 1)
    assert report["errors"][0]["check"] == "memory"


def test_recorded_deaths_lead_and_name_the_notebook():
    death = {
        "time": NOW - 60,
        "pid": 42,
        "notebook": "/home/u/big.ipynb",
        "cause": "signal",
        "signal": "SIGSEGV",
        "detail": "exit status from the server",
        "rss_bytes": 300 * MiB,
        "limit_bytes": None,
        "samples": [],
    }
    f = facts(deaths=[death], memory={"oom_kills": 1})
    found = rules.evaluate(f)
    assert ids(found)[0] == "recorded-native-crash"
    commands = [c for x in found for c in x["commands"]]
    assert not any("YOUR_NOTEBOOK" in c for c in commands)
    assert any(c.endswith("run /home/u/big.ipynb") for c in commands)


def test_thresholds_are_read_when_the_rules_run(monkeypatch):
    monkeypatch.setattr(thresholds, "IDLE_SECONDS", 1)
    ks = [kernel(1, 300, idle=5)]
    assert "idle-kernels" in ids(rules.evaluate(facts(kernels={"kernels": ks})))


def test_time_is_not_read_from_the_clock_when_facts_say_it():
    death = {"time": time.time() - 30, "pid": 1, "cause": "oom-kill", "samples": []}
    found = rules.evaluate(facts(deaths=[death]))
    assert ids(found)[0] == "recorded-oom-kill"


# -- The table itself: what every row must hold, so that adding one has no traps --------


@pytest.mark.parametrize("row", rules.RULES, ids=lambda r: r["id"])
def test_every_row_is_complete_and_consistent(row):
    import re

    from wizard.diagnosis import checks, docs_map, signals

    assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", row["id"]), row["id"]
    assert row["severity"] in ("problem", "warning", "info")
    assert row["check"] in {c["id"] for c in checks.CHECKS}
    assert row["cause"] in {s["cause"] for s in signals.SIGNALS} | {"stopped", None}
    assert row["evidence"] in rules.EVIDENCE_KINDS
    if row["evidence"] is not None:
        assert row["cause"] == "memory", "memory evidence speaks for the memory family"
    assert row["doc_label"] in docs_map.LABELS, "a label the site has (docs_map.LABELS)"
    assert callable(row["test"]) and row["test"].__module__.startswith("wizard.diagnosis.rules_")
    assert row["when"].endswith(".") and len(row["when"]) > 20


def test_ids_are_unique():
    got = [r["id"] for r in rules.RULES]
    assert len(got) == len(set(got))


@pytest.mark.parametrize("row", [r for r in rules.RULES if r.get("reads")], ids=lambda r: r["id"])
def test_what_a_rule_reads_is_decided_before_it(row):
    order = [r["id"] for r in rules.RULES]
    me = order.index(row["id"])
    for want in row["reads"]:
        if want == "oom-evidence":
            earlier = rules.OOM_RULES
        elif want == "memory-evidence":
            earlier = rules.MEMORY_RULES
        else:
            assert want in order, f"{row['id']} reads an unknown rule {want}"
            earlier = {want}
        late = [rid for rid in earlier if order.index(rid) > me]
        assert not late, f"{row['id']} reads {want}, decided later by {late}"


def test_rules_that_read_earlier_findings_say_so():
    """A rule function that looks at _found or the evidence flags declares it in ``reads``."""
    import inspect

    for row in rules.RULES:
        src = inspect.getsource(row["test"])
        declared = set(row.get("reads") or ())
        if "_oom_evidence" in src:
            assert "oom-evidence" in declared, row["id"]
        if "_memory_evidence" in src:
            assert "memory-evidence" in declared, row["id"]
        if "_found" in src:
            assert declared - {"oom-evidence", "memory-evidence"}, row["id"]


def test_a_label_missing_from_the_site_costs_that_finding_only(monkeypatch):
    row = next(r for r in rules.RULES if r["id"] == "many-kernels")
    monkeypatch.setitem(row, "doc_label", "no-such-label")
    many = [kernel(100 + i, 10) for i in range(thresholds.MANY_KERNELS)]
    f = facts(kernels={"kernels": many}, banner=banner.parse("SIGKILL"))
    found = rules.evaluate(f)
    assert "many-kernels" not in ids(found)
    assert "killed-sigkill" in ids(found)
    assert [e["check"] for e in f["errors"]] == ["kernels"]
    assert "rule many-kernels failed: KeyError" in f["errors"][0]["message"]


@pytest.mark.parametrize("evidence", ["oom", "memory", None])
def test_evidence_alone_decides_what_a_finding_proves(monkeypatch, evidence):
    """The SIGKILL finding names the OOM killer only after an "oom" finding; the check a
    row is filed under (here "memory") does not decide it."""
    row = next(r for r in rules.RULES if r["id"] == "memory-pressure")
    assert row["check"] == "memory"
    monkeypatch.setitem(row, "evidence", evidence)
    monkeypatch.setattr(
        rules, "OOM_RULES", {r["id"] for r in rules.RULES if r["evidence"] == "oom"}
    )
    monkeypatch.setattr(
        rules,
        "MEMORY_RULES",
        {r["id"] for r in rules.RULES if r["evidence"] in ("oom", "memory")},
    )
    stalled = {"pressure": {"some_avg10": thresholds.PRESSURE_SOME_AVG10 + 5}}
    found = rules.evaluate(facts(memory=stalled, banner=banner.parse("SIGKILL")))
    assert "memory-pressure" in ids(found)
    sigkill = next(f for f in found if f["id"] == "killed-sigkill")
    assert ("memory evidence above" in sigkill["message"]) == (evidence == "oom")
    no_memory = "no-memory-evidence" in ids(
        rules.evaluate(facts(memory=stalled, banner=banner.parse("died")))
    )
    assert no_memory == (evidence is None)
