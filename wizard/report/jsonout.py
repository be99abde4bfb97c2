"""The machine-readable report. Its shape is documented on the site (label ``wizard-json``).

Bump SCHEMA when a field changes meaning or goes away; adding fields keeps it.
"""

from __future__ import annotations

import json
import time
from typing import IO, TYPE_CHECKING

from wizard import __version__

if TYPE_CHECKING:
    from wizard.base.shapes import Facts, Finding, Report

SCHEMA = "kernel-wizard/2"  # 2: errors are {"check", "message"} objects


def report(facts: Facts, findings: list[Finding], docs_base: str | None, exit_code: int) -> Report:
    mem = facts.get("memory") or {}
    servers = facts.get("servers") or {}
    problems = sum(1 for f in findings if f["severity"] == "problem")
    warnings = sum(1 for f in findings if f["severity"] == "warning")
    banner = facts.get("banner")
    return {
        "schema": SCHEMA,
        "version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(facts.get("now"))),
        "docs_url": docs_base,
        "banner": None
        if not banner
        else {
            "text": banner["text"],
            "kind": banner["kind"],
            "signal": banner["signal"],
            "code": banner["code"],
        },
        "intentional": facts.get("intentional"),
        "memory": mem,
        "kernels": (facts.get("kernels") or {}).get("kernels") or [],
        "servers": servers.get("servers") or [],
        "fallback": servers.get("fallback"),
        "kernelspecs": (facts.get("kernelspecs") or {}).get("kernelspecs") or [],
        "deaths": facts.get("deaths") or [],
        "recorder": facts.get("recorder"),
        "findings": [{k: v for k, v in f.items() if k != "cause"} for f in findings],
        "errors": facts.get("errors") or [],
        "versions": facts.get("versions"),
        "summary": {"problems": problems, "warnings": warnings, "exit_code": exit_code},
    }


def write(
    stream: IO[str],
    facts: Facts,
    findings: list[Finding],
    docs_base: str | None,
    exit_code: int,
) -> None:
    json.dump(report(facts, findings, docs_base, exit_code), stream, indent=2, sort_keys=False)
    stream.write("\n")
