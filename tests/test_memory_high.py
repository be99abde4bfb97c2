"""memory.high on cgroup v2, from fixture trees through the memory probe and the rules:
a limit set but never reached is no finding; a reached one is a warning."""

import pytest
from fixtures_memory import build, v2_files

from wizard.diagnosis import rules
from wizard.probes import memory

MiB = 1 << 20


def findings(tmp_path, high_events):
    files = v2_files(
        "/pod/ctr",
        {
            "/pod": {
                "memory.max": str(900 * MiB) + "\n",
                "memory.high": str(600 * MiB) + "\n",
                "memory.current": str(100 * MiB) + "\n",
                "memory.events": f"low 0\nhigh {high_events}\nmax 0\noom 0\noom_kill 0\n",
            },
            "/pod/ctr": {
                "memory.max": "max\n",
                "memory.high": "max\n",
                "memory.current": str(100 * MiB) + "\n",
                "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
            },
        },
    )
    facts = {"memory": memory.probe(build(tmp_path, files), oom_log=False)}
    assert facts["memory"]["high_bytes"] == 600 * MiB
    return {f["id"]: f for f in rules.evaluate(facts)}


def test_memory_high_never_reached_is_no_finding(tmp_path):
    found = findings(tmp_path, 0)
    assert "memory-throttled" not in found


@pytest.mark.parametrize("hits", [1, 4521])
def test_memory_high_reached_is_a_warning_with_the_count(tmp_path, hits):
    found = findings(tmp_path, hits)
    f = found["memory-throttled"]
    assert f["severity"] == "warning"
    assert f"throttled this cgroup {hits} time(s)" in f["message"]
    assert "600" in f["message"] and "/pod" in f["message"]
