"""A kernel's own pids limit counts like its memory limit, also from outside its cgroup."""

from wizard.diagnosis import rules
from wizard.report import text


def facts(own_pids, kernel_cgroup):
    return {
        "memory": {"pids": own_pids, "cgroup": {"path": "/user.slice"}},
        "kernels": {
            "kernels": [
                {
                    "pid": 4242,
                    "notebook": "fork-bomb.ipynb",
                    "kernel_id": "k1",
                    "cgroup": kernel_cgroup,
                }
            ]
        },
    }


KERNEL_CG = {"path": "/kernels/k1", "pids_max": 40, "pids_current": 40, "pids_refused": 3}


def pids_finding(f):
    rule = next(r for r in rules.RULES if r["id"] == "pids-near-limit")
    return rule["test"](f)


def test_a_kernels_own_pids_limit_is_a_finding_from_outside():
    f = facts({"current": 300, "max": None, "events_max": None}, KERNEL_CG)
    found = pids_finding(f)
    assert found is not None
    assert found["message"] == (
        "40 processes of 40 allowed in the kernel of fork-bomb.ipynb (cgroup /kernels/k1). "
        "The limit has refused to start a process 3 time(s)."
    )
    assert text.summary_processes(f) == (
        "no pids limit here; a kernel's cgroup /kernels/k1: 40 of 40 processes allowed, 3 refused"
    )


def test_a_kernel_far_from_its_limit_is_no_finding():
    cg = {**KERNEL_CG, "pids_current": 5, "pids_refused": 0}
    f = facts({"current": 300, "max": None, "events_max": None}, cg)
    assert pids_finding(f) is None


def test_the_kernel_in_our_own_cgroup_is_counted_once():
    own = {"current": 40, "max": 40, "events_max": 3}
    f = facts(own, {**KERNEL_CG, "path": "/user.slice"})
    assert pids_finding(f)["message"] == (
        "40 processes of 40 allowed. The limit has refused to start a process 3 time(s)."
    )
    assert text.summary_processes(f) == "40 of 40 processes allowed"
