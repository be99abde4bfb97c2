"""Rules turn the probes' data into findings. The RULES table is the only list.

The site's wizard page renders CHECKS and RULES (``.. wizard-checks::`` and
``.. wizard-findings::``), so what the page promises is what the code does.

Each rule's ``test(facts)`` returns None, or a dict with ``message`` (one line:
what was found), ``hint`` (one line: what to do) and optionally ``commands``
(shell commands that fix it), ``evidence`` (lines shown with ``-v``),
``severity`` (to override the table's) and ``signal_anchor``. ``facts`` holds the
probes' results under "memory", "kernels", "servers", "kernelspecs", "deaths",
plus "banner" (``banner.parse`` or None) and "intentional" (True when the user said
they stopped the kernel themselves). A rule that raises is reported in
``facts["errors"]`` under its check, like a probe that failed, and a failed memory
rule keeps the verdict from claiming there is no memory trouble.

A row of RULES, and what each field does beyond the obvious:

``id``          stable, kebab-case; the JSON's ``findings[].id`` and the site's table.
``severity``    ``problem``, ``warning`` or ``info`` (a rule may override it per hit).
``check``       the CHECKS entry the finding belongs to, and where a failure of the rule
                is reported. It says nothing about evidence: that is ``evidence``.
``cause``       the family of the signals table the finding speaks for (``rank`` puts
                the family the banner names first), or None.
``evidence``    ``"oom"``: the finding shows that the OOM killer struck or was about
                to (it turns the SIGKILL finding into "the memory evidence above says
                why"); ``"memory"``: memory trouble, not a kill (it keeps
                ``no-memory-evidence`` from firing); None: neither.
``reads``       what the rule reads of the rules before it: rule ids, or
                ``"oom-evidence"`` / ``"memory-evidence"`` (every rule of that kind).
                The table is evaluated in order, so those must come earlier;
                tests/test_rules_table.py checks it for every row.
``doc_label``   the site's section (a key of ``docs_map.LABELS``; checked for every row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wizard.base import fmt
from wizard.base.failure import error, where
from wizard.base.thresholds import (
    HIGH_USE,
    IDLE_MIN_BYTES,
    IDLE_SECONDS,
    MANY_KERNELS,
    NEAR_LIMIT,
    PIDS_NEAR_LIMIT,
    PRESSURE_SOME_AVG10,
)
from wizard.diagnosis import rules_banner, rules_deaths, rules_kernels, rules_memory
from wizard.diagnosis.checks import CHECKS
from wizard.diagnosis.common import INFO, PROBLEM, SEVERITY_ORDER, WARNING, banner_cause

if TYPE_CHECKING:
    from wizard.base.shapes import Facts, Finding, Hit, Rule

__all__ = ["CHECKS", "RULES", "evaluate", "rank"]

# Ranked: the first rule that fires leads the verdict (the banner can move a family
# to the front, see rank()). "cause" ties a rule to a family of the signals table.
RULES: list[Rule] = [
    {
        "id": "recorded-oom-kill",
        "severity": PROBLEM,
        "check": "deaths",
        "cause": "memory",
        "when": "The recorder saw a kernel die in the last day, killed by the OOM killer (or by "
        "SIGKILL): its notebook, memory and limit lead the verdict.",
        "doc_label": "kernel-terminated-memory",
        "evidence": "oom",
        "test": rules_deaths.recorded_oom,
    },
    {
        "id": "recorded-native-crash",
        "severity": PROBLEM,
        "check": "deaths",
        "cause": "native",
        "when": "The recorder saw a kernel die in the last day of SIGSEGV, SIGABRT, SIGBUS or "
        "SIGILL.",
        "doc_label": "kernel-terminated-eliminate-jupyter",
        "evidence": None,
        "test": rules_deaths.recorded_native,
    },
    {
        "id": "recorded-exit",
        "severity": PROBLEM,
        "check": "deaths",
        "cause": "cannot-start",
        "when": "The recorder saw a kernel end by itself, with an exit code, in the last day.",
        "doc_label": "kernel-cannot-start",
        "evidence": None,
        "test": rules_deaths.recorded_exit,
    },
    {
        "id": "stopped-on-purpose",
        "severity": INFO,
        "check": "banner",
        "cause": "stopped",
        "when": "You said you restarted or shut down the kernel, or the message names SIGTERM.",
        "doc_label": "jupyter-kernel-terminated",
        "evidence": None,
        "test": rules_banner.stopped_on_purpose,
    },
    {
        "id": "oom-kills-recorded",
        "severity": PROBLEM,
        "check": "oom",
        "cause": "memory",
        "when": "The OOM killer's count is above zero (the cgroup's, or the machine's where "
        "there is no cgroup), or the kernel log shows a kill in the last day.",
        "doc_label": "kernel-terminated-memory",
        "evidence": "oom",
        "test": rules_memory.oom_kills,
    },
    {
        "id": "userspace-oom-kill",
        "severity": PROBLEM,
        "check": "oom",
        "cause": "memory",
        "when": "systemd-oomd (journal, or the user.oomd_kill xattr on our cgroup) killed a "
        "cgroup inside ours, or earlyoom signalled a process of this user in the last day: no "
        "kernel log line, no oom_kill count.",
        "doc_label": "low-memory",
        "evidence": "oom",
        "test": rules_memory.userspace_oom_kill,
    },
    {
        "id": "memory-near-limit",
        "severity": PROBLEM,
        "check": "memory",
        "cause": "memory",
        "when": f"{HIGH_USE:.0%} or more of the memory limit in force is used (a problem from "
        f"{NEAR_LIMIT:.0%}).",
        "doc_label": "low-memory",
        "evidence": "oom",
        "test": rules_memory.memory_near_limit,
    },
    {
        "id": "memory-pressure",
        "severity": WARNING,
        "check": "memory",
        "cause": "memory",
        "when": f"Tasks waited for memory over {PRESSURE_SOME_AVG10:.0f}% of the last 10 "
        "seconds (pressure stall information).",
        "doc_label": "low-memory",
        "evidence": "oom",
        "test": rules_memory.memory_pressure,
    },
    {
        "id": "memory-throttled",
        "severity": WARNING,
        "check": "memory",
        "cause": "memory",
        "when": "The cgroup went over its memory.high (memory.events high): the kernel "
        "throttles it there (slowness, memory pressure) without killing; memory.max is "
        "the limit that kills.",
        "doc_label": "low-memory",
        "evidence": "oom",
        "test": rules_memory.memory_throttled,
    },
    {
        "id": "killed-sigkill",
        "severity": PROBLEM,
        "check": "banner",
        "cause": "memory",
        "when": "The message names SIGKILL (or exit status 137).",
        "doc_label": "kernel-terminated-memory",
        "evidence": None,
        "reads": ("oom-evidence",),
        "test": rules_banner.banner_sigkill,
    },
    {
        "id": "idle-kernels",
        "severity": WARNING,
        "check": "kernels",
        "cause": "memory",
        "when": f"Kernels that are not busy hold {fmt.size(IDLE_MIN_BYTES)} or more each and "
        f"have been idle for {fmt.duration(IDLE_SECONDS)} or more.",
        "doc_label": "jupyter-halt",
        "evidence": "memory",
        "test": rules_kernels.idle_kernels,
    },
    {
        "id": "many-kernels",
        "severity": WARNING,
        "check": "kernels",
        "cause": "memory",
        "when": f"{MANY_KERNELS} or more kernels are running.",
        "doc_label": "jupyter-halt",
        "evidence": "memory",
        "test": rules_kernels.many_kernels,
    },
    {
        "id": "pids-near-limit",
        "severity": PROBLEM,
        "check": "processes",
        "cause": "native",
        "when": f"{PIDS_NEAR_LIMIT:.0%} or more of the cgroup's pids limit is used, or the "
        "limit has refused a new process.",
        "doc_label": "too-many-processes",
        "evidence": None,
        "test": rules_memory.pids_near_limit,
    },
    {
        "id": "native-crash",
        "severity": PROBLEM,
        "check": "banner",
        "cause": "native",
        "when": "The message names SIGSEGV, SIGABRT, SIGBUS or SIGILL.",
        "doc_label": "kernel-terminated-eliminate-jupyter",
        "evidence": None,
        "test": rules_banner.banner_native,
    },
    {
        "id": "kernel-exit-code",
        "severity": PROBLEM,
        "check": "banner",
        "cause": "cannot-start",
        "when": "The message names an exit code that is not a signal's.",
        "doc_label": "kernel-cannot-start",
        "evidence": None,
        "test": rules_banner.banner_exit,
    },
    {
        "id": "kernelspec-broken",
        "severity": PROBLEM,
        "check": "kernelspecs",
        "cause": "cannot-start",
        "when": "A kernelspec's interpreter is missing or not executable, its kernel.json is "
        "unreadable, or (with --deep) it does not start.",
        "doc_label": "kernel-cannot-start",
        "evidence": None,
        "test": rules_kernels.kernelspec_broken,
    },
    {
        "id": "server-unreachable",
        "severity": WARNING,
        "check": "servers",
        "cause": None,
        "when": "A Jupyter server's process is alive but its API does not answer.",
        "doc_label": "plain-jupyter-server",
        "evidence": None,
        "test": rules_kernels.server_unreachable,
    },
    {
        "id": "no-memory-evidence",
        "severity": INFO,
        "check": "memory",
        "cause": None,
        "when": "No memory finding fired and the message does not point elsewhere: the cause "
        "is likely something else.",
        "doc_label": "kernel-terminated-other",
        "evidence": None,
        "reads": ("memory-evidence",),
        "test": rules_memory.no_memory_evidence,
    },
    {
        "id": "try-plain-server",
        "severity": INFO,
        "check": "servers",
        "cause": None,
        "when": "With no memory evidence, or after a native crash: how to open the notebook "
        "in a plain Jupyter server here.",
        "doc_label": "kernel-terminated-eliminate-ui",
        "evidence": None,
        "reads": ("no-memory-evidence", "native-crash"),
        "test": rules_kernels.plain_server,
    },
]

# The rules whose finding is evidence of memory trouble (the banner's own rule is not),
# and those among them that say the OOM killer struck or was about to.
EVIDENCE_KINDS = ("oom", "memory", None)
MEMORY_RULES = {r["id"] for r in RULES if r["evidence"] in ("oom", "memory")}
OOM_RULES = {r["id"] for r in RULES if r["evidence"] == "oom"}


def evaluate(facts: Facts, docs_base: str | None = None) -> list[Finding]:
    """Run every rule in table order; return the findings, ranked.

    A rule that raises costs its own finding only: the failure is added to
    ``facts["errors"]`` under the rule's check, and when it is a memory rule the
    verdict no longer says there is no sign of memory trouble.
    """
    errors = facts.setdefault("errors", [])
    found: list[Finding] = []
    view: dict[str, Any] = dict(facts)  # what the rules see: the facts, plus what fired so far
    view["_found"] = found
    view["_memory_evidence"] = False
    view["_oom_evidence"] = False
    for rule in RULES:
        try:
            finding = _finding(rule, rule["test"](view), docs_base)
        except Exception as exc:  # data of a shape no probe should produce, or a rule bug
            finding = None
            errors.append(
                error(
                    rule["check"], f"rule {rule['id']} failed: {type(exc).__name__} ({where(exc)})"
                )
            )
            if rule["id"] in MEMORY_RULES:
                view["_memory_evidence"] = None  # unknown: never "no memory trouble"
        if finding is None:
            continue
        if rule["id"] in MEMORY_RULES and view["_memory_evidence"] is not None:
            view["_memory_evidence"] = True
        if rule["id"] in OOM_RULES:
            view["_oom_evidence"] = True
        found.append(finding)
    return rank(found, banner_cause(facts))


def _finding(rule: Rule, hit: Hit | None, docs_base: str | None) -> Finding | None:
    """The finding of one rule's hit (None when it did not fire); its links are made here,
    inside the rule's guard, so a label missing from docs_map costs this finding only."""
    from wizard.diagnosis.docs_map import url_for

    if not hit:
        return None
    finding: Finding = {
        "id": rule["id"],
        "severity": hit.get("severity", rule["severity"]),
        "check": rule["check"],
        "message": hit["message"],
        "hint": hit["hint"],
        "commands": [c for c in hit.get("commands") or [] if c],
        "evidence": hit.get("evidence") or [],
        "doc_label": rule["doc_label"],
        "url": url_for(rule["doc_label"], docs_base),
        "cause": rule["cause"],
    }
    anchor = hit.get("signal_anchor")
    if anchor:
        finding["signal_label"] = anchor
        finding["signal_url"] = url_for(anchor, docs_base)
    return finding


def rank(findings: list[Finding], lead_cause: str | None = None) -> list[Finding]:
    """Severity first; within it, the family the banner points to, then table order."""
    order = {r["id"]: i for i, r in enumerate(RULES)}

    def key(f: Finding) -> tuple[int, int, int]:
        return (
            SEVERITY_ORDER[f["severity"]],
            0 if lead_cause and f["cause"] == lead_cause else 1,
            order[f["id"]],
        )

    return sorted(findings, key=key)
