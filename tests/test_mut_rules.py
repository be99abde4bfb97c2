"""wizard.diagnosis.rules.evaluate and rank: what the findings say, in which order."""

import pytest

from wizard.diagnosis import rules
from wizard.diagnosis.common import INFO, PROBLEM, WARNING

SITE = "https://kernel-wizard.readthedocs.io/en/latest/"
MEMORY_URL = SITE + "jupyter-kernel-terminated.html#kernel-terminated-memory"


def rule(rid, test, severity=PROBLEM, check="kernels", cause=None, doc="kernel-terminated-memory"):
    return {
        "id": rid,
        "severity": severity,
        "check": check,
        "cause": cause,
        "when": "",
        "doc_label": doc,
        "test": test,
    }


@pytest.fixture
def table(monkeypatch):
    """Replace the rules table; the memory and OOM sets are given by id."""

    def use(rows, memory=(), oom=()):
        monkeypatch.setattr(rules, "RULES", rows)
        monkeypatch.setattr(rules, "MEMORY_RULES", set(memory))
        monkeypatch.setattr(rules, "OOM_RULES", set(oom))

    return use


def hit(**extra):
    return lambda facts: {"message": "found it", "hint": "do this", **extra}


def test_a_finding_holds_the_rules_row_and_the_hit(table):
    table(
        [
            rule(
                "a",
                hit(
                    commands=["halt x", "", None, "top"],
                    evidence=["line 1"],
                    signal_anchor="signal-sigkill",
                ),
                severity=WARNING,
                check="memory",
                cause="memory",
            )
        ]
    )
    facts = {}
    assert rules.evaluate(facts) == [
        {
            "id": "a",
            "severity": WARNING,
            "check": "memory",
            "message": "found it",
            "hint": "do this",
            "commands": ["halt x", "top"],
            "evidence": ["line 1"],
            "doc_label": "kernel-terminated-memory",
            "url": MEMORY_URL,
            "cause": "memory",
            "signal_label": "signal-sigkill",
            "signal_url": SITE + "kernel-signals.html#signal-sigkill",
        }
    ]
    assert facts == {"errors": []}


def test_a_hit_can_override_the_severity_and_the_docs_base_is_used(table):
    table(
        [
            rule("a", hit(severity=INFO, commands=None, evidence=None), doc="low-memory"),
            rule("b", hit(signal_anchor="signal-sigsegv")),
        ]
    )
    b, f = rules.evaluate({}, docs_base="https://example.org/site/")
    assert b["signal_url"] == "https://example.org/site/kernel-signals.html#signal-sigsegv"
    assert f["severity"] == INFO
    assert f["commands"] == []
    assert f["evidence"] == []
    assert f["url"].startswith("https://example.org/site/")
    assert f["url"].endswith(".html#low-memory")
    assert "signal_label" not in f and "signal_url" not in f


def test_rules_that_do_not_fire_give_no_finding(table):
    table([rule("none", lambda facts: None), rule("empty", lambda facts: {})])
    assert rules.evaluate({"errors": ["kept"]}) == []


def test_each_rule_sees_the_facts_and_what_fired_before_it(table):
    seen = []

    def look(name, answer=None):
        def test(facts):
            seen.append(
                (
                    name,
                    [f["id"] for f in facts["_found"]],
                    facts["_memory_evidence"],
                    facts["_oom_evidence"],
                    facts.get("banner"),
                )
            )
            return answer

        return test

    table(
        [
            rule("first", look("first")),
            rule("mem", look("mem", {"message": "m", "hint": "h"}), cause="memory"),
            rule("after-mem", look("after-mem")),
            rule("oom", look("oom", {"message": "o", "hint": "h"}), cause="memory"),
            rule("last", look("last")),
        ],
        memory={"mem", "oom"},
        oom={"oom"},
    )
    facts = {"banner": None}
    found = rules.evaluate(facts)
    assert [f["id"] for f in found] == ["mem", "oom"]
    assert seen == [
        ("first", [], False, False, None),
        ("mem", [], False, False, None),
        ("after-mem", ["mem"], True, False, None),
        ("oom", ["mem"], True, False, None),
        ("last", ["mem", "oom"], True, True, None),
    ]
    assert "_found" not in facts and "_memory_evidence" not in facts


def test_an_oom_rule_alone_is_not_memory_evidence(table):
    seen = []
    table(
        [
            rule("oom", hit()),
            rule("look", lambda f: seen.append((f["_memory_evidence"], f["_oom_evidence"]))),
        ],
        oom={"oom"},
    )
    rules.evaluate({})
    assert seen == [(False, True)]


def test_a_rule_that_raises_costs_its_own_finding_only(table):
    seen = []

    def broken(facts):
        raise KeyError("secret value")

    table(
        [
            rule("broken", broken, check="kernels"),
            rule("look", lambda f: seen.append(f["_memory_evidence"])),
            rule("fine", hit()),
        ]
    )
    facts = {"errors": ["earlier"]}
    found = rules.evaluate(facts)
    assert [f["id"] for f in found] == ["fine"]
    assert seen == [False]  # not a memory rule: the memory verdict stands
    assert facts["errors"][0] == "earlier"
    (err,) = facts["errors"][1:]
    assert err["check"] == "kernels"
    assert err["message"].startswith("rule broken failed: KeyError (test_mut_rules.py:")
    assert "secret" not in err["message"]


def test_a_failed_memory_rule_makes_the_memory_verdict_unknown(table):
    seen = []

    def broken(facts):
        raise ValueError("x")

    table(
        [
            rule("mem", broken, check="memory", cause="memory"),
            rule("look", lambda f: seen.append(f["_memory_evidence"])),
            rule("mem2", hit(), cause="memory"),
            rule("look2", lambda f: seen.append(f["_memory_evidence"])),
        ],
        memory={"mem", "mem2"},
    )
    facts = {}
    assert [f["id"] for f in rules.evaluate(facts)] == ["mem2"]
    assert seen == [None, None]  # a later memory finding does not make it known
    assert [e["check"] for e in facts["errors"]] == ["memory"]
    assert facts["errors"][0]["message"].startswith("rule mem failed: ValueError (")


def test_the_findings_come_ranked_with_the_banners_family_first(table):
    table(
        [
            rule("info", hit(), severity=INFO),
            rule("mem", hit(), cause="memory"),
            rule("native", hit(), cause="native"),
            rule("warn", hit(), severity=WARNING, cause="native"),
        ]
    )
    assert [f["id"] for f in rules.evaluate({})] == ["mem", "native", "warn", "info"]
    banner = {"banner": {"row": {"cause": "native"}}}
    assert [f["id"] for f in rules.evaluate(banner)] == ["native", "mem", "warn", "info"]
    no_row = {"banner": {"row": None}}
    assert [f["id"] for f in rules.evaluate(no_row)] == ["mem", "native", "warn", "info"]


def test_rank_without_a_lead_keeps_the_table_order_within_a_severity():
    ids = [r["id"] for r in rules.RULES]
    found = [
        {"id": ids[3], "severity": PROBLEM, "cause": None},
        {"id": ids[0], "severity": PROBLEM, "cause": None},
        {"id": ids[2], "severity": INFO, "cause": None},
        {"id": ids[1], "severity": WARNING, "cause": None},
    ]
    assert [f["id"] for f in rules.rank(found)] == [ids[0], ids[3], ids[1], ids[2]]
    assert [f["id"] for f in rules.rank(found, None)] == [ids[0], ids[3], ids[1], ids[2]]
    # a lead cause no finding has changes nothing, and None causes are never "the lead"
    assert [f["id"] for f in rules.rank(found, "memory")] == [ids[0], ids[3], ids[1], ids[2]]
    assert rules.rank([]) == []


def test_the_real_table_on_a_broken_kernelspec_and_a_hung_server():
    facts = {
        "memory": {},
        "kernels": {"kernels": []},
        "kernelspecs": {"kernelspecs": [{"name": "py", "ok": False, "problem": "no python"}]},
        "servers": {"servers": [{"pid": 7, "alive": True, "reachable": False}]},
        "deaths": [],
        "banner": None,
    }
    found = rules.evaluate(facts)
    assert [(f["id"], f["severity"]) for f in found] == [
        ("kernelspec-broken", PROBLEM),
        ("server-unreachable", WARNING),
        ("no-memory-evidence", INFO),
        ("try-plain-server", INFO),
    ]
    assert found[0]["message"] == "Kernelspec 'py': no python."
    assert found[1]["message"] == (
        "A Jupyter server (pid 7) is running but does not answer: no reply."
    )
    assert facts["errors"] == []
