"""The rules for a whole server pod OOM-killed (kube-state-metrics) pass promtool's own
check and their unit tests: alice's OOMKilled restart fires, bob's crash does not."""

import shutil
import subprocess
from pathlib import Path

from conftest import need

RULES = Path(__file__).resolve().parent.parent / "contrib" / "prometheus"


def _promtool(*args):
    need(shutil.which("promtool"), "promtool (apt-get install prometheus)")
    return subprocess.run(
        ["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=120
    )


def test_pod_rules_pass_promtool_check_and_unit_tests():
    checked = _promtool("check", "rules", "kernel-wizard-pod-rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 2 rules found" in checked.stdout
    tested = _promtool("test", "rules", "kernel-wizard-pod-rules-test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
