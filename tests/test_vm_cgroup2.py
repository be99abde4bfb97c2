"""cgroup v2 as a real kernel shows it: the wizard against a Debian 6.1 kernel under qemu.

One boot (``tests/vm``) plays every scenario and brings back, for each, the
wizard's JSON as a process in the scenario's cgroup saw it and the kernel's own
files (``memory.*``, ``pids.*``, ``/proc/self/cgroup``, ``/proc/self/mountinfo``,
the kernel log). Every check compares the two; no number is written down here.

A test of something the wizard does not get right yet is marked xfail with the
reason and asserts the behaviour it should have (``raises=AssertionError``: a
scenario that did not run is an error, never an expected failure).
``WIZARD_VM_DUMP=DIR`` writes all the captured files to DIR (see ``tests/vm/dump.py``).
"""

import re
import sys

import pytest
from conftest import need

pytestmark = pytest.mark.vm

BOOT_TIMEOUT = 480  # seconds; one boot under TCG takes about two and a half minutes


@pytest.fixture(scope="module")
def vm():
    from vm import boot, dump, kernel

    need(sys.platform.startswith("linux"), "needs Linux to run qemu")
    missing = kernel.tools_missing()
    need(not missing, "needs " + ", ".join(missing) + " (see .ci/run)")
    result = boot.take(timeout=BOOT_TIMEOUT)  # begun at collection (conftest), or now
    dump.boot(result)
    return result


def scenario(vm, name):
    data = vm.scenarios.get(name)
    if not data or "error" in data:
        why = (data or {}).get("error") or "no result (see the console below)"
        pytest.fail(
            f"scenario {name} did not finish:\n{why}\n--- console ---\n{vm.console[-3000:]}"
        )
    return data


def wizard(run):
    """The wizard's parsed JSON from an ``inside.py`` result."""
    assert run.get("json"), f"no JSON from the wizard:\n{run.get('stderr') or run}"
    return run["json"]


# -- The kernel's own files --------------------------------------------------------


def number(text):
    """A one-number cgroup file (None for "max")."""
    s = text.strip()
    return None if s == "max" else int(s)


def keyed(text):
    """``{key: int}`` of memory.events, pids.events and the like."""
    return {k: int(v) for k, v in (line.split() for line in text.splitlines() if line)}


_KILLED = re.compile(r"Killed process (\d+) \(")
_TASK_MEMCG = re.compile(r"task_memcg=([^,]+),.*pid=(\d+),")
_GROUP = re.compile(r"Tasks in (\S+) are going to be killed due to memory.oom.group set")


def kernel_kills(dmesg):
    """``[(pid, cgroup)]`` for each ``Killed process`` line, in log order.

    The cgroup comes from the ``oom-kill:`` line naming that pid, or from the
    ``Tasks in ... memory.oom.group`` line for the members of a group kill.
    """
    out, memcg, group = [], {}, None
    for line in dmesg:
        if m := _TASK_MEMCG.search(line):
            memcg[int(m.group(2))] = m.group(1)
        elif m := _GROUP.search(line):
            group = m.group(1)
        elif m := _KILLED.search(line):
            pid = int(m.group(1))
            out.append((pid, memcg.get(pid) or group))
    return out


def mount_root(mountinfo, where="/sys/fs/cgroup"):
    """The root field of the cgroup2 mount at ``where``."""
    for line in mountinfo.splitlines():
        f = line.split()
        if f[4] == where and f[f.index("-") + 1] == "cgroup2":
            return f[3]
    return None


def ints(obj):
    """Every int anywhere in a JSON structure."""
    if isinstance(obj, dict):
        return {i for v in obj.values() for i in ints(v)}
    if isinstance(obj, list):
        return {i for v in obj for i in ints(v)}
    return {obj} if isinstance(obj, int) and not isinstance(obj, bool) else set()


def oom_pids(report):
    return [k["pid"] for k in report["memory"]["oom_log"]]


def finding_ids(report):
    return {f["id"] for f in report["findings"]}


# -- a. Kubernetes-like nesting: the limit on the pod, the processes in its child ---


def test_pod_oom_kernel_facts(vm):
    s = scenario(vm, "pod_oom")
    f = s["files"]
    assert s["victim"]["returncode"] == -9
    assert keyed(f["/pod/memory.events"])["oom_kill"] >= 1
    # oom counts where the limit was hit, oom_kill where the victim lived
    assert keyed(f["/pod/memory.events.local"])["oom_kill"] == 0
    assert keyed(f["/pod/ctr/memory.events"])["oom"] == 0
    assert (s["victim"]["pid"], "/pod/ctr") in kernel_kills(s["dmesg"])


def test_pod_limit_and_peak_are_the_pods(vm):
    s = scenario(vm, "pod_oom")
    f, run = s["files"], s["wizard"]
    mem = wizard(run)["memory"]
    assert run["proc_self_cgroup"] == "0::/pod/ctr\n"
    assert mem["cgroup"]["path"] == run["proc_self_cgroup"].strip().split("::", 1)[1]
    assert mem["limit_bytes"] == number(f["/pod/memory.max"])
    assert mem["cgroup"]["limit_path"] == "/pod"
    assert mem["peak_bytes"] == number(f["/pod/memory.peak"])


def test_pod_oom_count_is_memory_events(vm):
    s = scenario(vm, "pod_oom")
    mem = wizard(s["wizard"])["memory"]
    events = keyed(s["files"]["/pod/memory.events"])
    assert mem["oom_kills"] == events["oom_kill"]
    assert mem["oom_events"] == events["oom"]
    assert mem["cgroup"]["failcnt"] == events["max"]


def test_pod_kernel_log_kill_is_the_victim(vm):
    s = scenario(vm, "pod_oom")
    report = wizard(s["wizard"])
    assert report["memory"]["oom_log_status"] == "ok"
    logged = [pid for pid, cg in kernel_kills(s["dmesg"]) if cg.startswith("/pod/")]
    assert oom_pids(report) == logged == [s["victim"]["pid"]]
    assert "oom-kills-recorded" in finding_ids(report)


# -- b. memory.oom.group: every member killed; another cgroup stays clean ----------


def test_group_kill_kernel_facts(vm):
    s = scenario(vm, "oom_group")
    f = s["files"]
    members = {m["pid"] for m in s["members"]} | {s["victim"]["pid"]}
    kills = kernel_kills(s["dmesg"])
    assert {pid for pid, _ in kills} == members
    assert all(cg == "/pod2/ctr" for _, cg in kills)
    # The kernel counts one kill per Killed line: the victim is counted twice.
    assert keyed(f["/pod2/ctr/memory.events"])["oom_kill"] == len(kills) == len(members) + 1
    assert keyed(f["/pod2/ctr/memory.events"])["oom_group_kill"] == 1
    assert keyed(f["/other/memory.events"])["oom_kill"] == 0


def test_group_kills_are_not_another_cgroups(vm):
    s = scenario(vm, "oom_group")
    report = wizard(s["wizard_other"])
    assert keyed(s["files"]["/other/memory.events"])["oom_kill"] == 0
    assert oom_pids(report) == []
    assert "oom-kills-recorded" not in finding_ids(report)


def test_group_kill_lists_each_process_once(vm):
    s = scenario(vm, "oom_group")
    report = wizard(s["wizard_ctr"])
    killed = {pid for pid, cg in kernel_kills(s["dmesg"]) if cg == "/pod2/ctr"}
    assert sorted(oom_pids(report)) == sorted(killed)


def test_group_kill_counts_distinct_processes(vm):
    s = scenario(vm, "oom_group")
    report = wizard(s["wizard_ctr"])
    mem = report["memory"]
    events = keyed(s["files"]["/pod2/ctr/memory.events"])
    assert mem["oom_group"] is True
    assert mem["oom_group_kills"] == events["oom_group_kill"]
    distinct = len({pid for pid, cg in kernel_kills(s["dmesg"]) if cg == "/pod2/ctr"})
    (oom,) = [f for f in report["findings"] if f["id"] == "oom-kills-recorded"]
    assert f"ended {distinct} processes" in oom["message"]
    assert "memory.oom.group is set" in oom["message"]


def test_group_kills_shown_elsewhere_for_another_cgroup(vm):
    s = scenario(vm, "oom_group")
    mem = wizard(s["wizard_other"])["memory"]
    elsewhere = {k["pid"] for k in mem["oom_log_elsewhere"]}
    assert {pid for pid, cg in kernel_kills(s["dmesg"]) if cg == "/pod2/ctr"} <= elsewhere
    assert mem["oom_kills"] == keyed(s["files"]["/other/memory.events"])["oom_kill"] == 0


# -- c. memory.high alone: throttling, no kill -------------------------------------


def test_memory_high_kernel_facts(vm):
    s = scenario(vm, "memory_high")
    during, after = s["files_during"], s["files"]
    assert number(during["/pod3/memory.max"]) is None
    assert number(during["/pod3/memory.current"]) > number(during["/pod3/memory.high"])
    events = keyed(after["/pod3/memory.events"])
    assert events["high"] > 0
    assert events["oom_kill"] == 0
    assert s["allocator"]["returncode"] == 0  # throttled, never killed


def test_memory_high_no_kill_reported(vm):
    s = scenario(vm, "memory_high")
    mem = wizard(s["wizard"])["memory"]
    assert mem["oom_kills"] == keyed(s["files"]["/pod3/memory.events"])["oom_kill"]


def test_memory_high_is_reported(vm):
    s = scenario(vm, "memory_high")
    report = wizard(s["wizard"])
    f = s["files"]
    high = number(f["/pod3/memory.high"])
    assert high in ints(report["memory"])
    assert keyed(f["/pod3/memory.events"])["high"] in ints(report["memory"])
    assert any("memory.high" in (x["message"] + x["hint"]) for x in report["findings"])


def test_memory_high_where_and_finding(vm):
    s = scenario(vm, "memory_high")
    report = wizard(s["wizard"])
    mem = report["memory"]
    assert mem["high_path"] == "/pod3"
    assert mem["high_bytes"] == number(s["files"]["/pod3/memory.high"])
    assert mem["high_events"] == keyed(s["files"]["/pod3/memory.events"])["high"]
    assert "memory-throttled" in finding_ids(report)


# -- d. cgroup namespace: the namespace root holds the limit ------------------------


def test_cgroupns_kernel_facts(vm):
    s = scenario(vm, "cgroupns")
    remount, plain = s["wizard_remount"], s["wizard_no_remount"]
    assert remount["proc_self_cgroup"] == plain["proc_self_cgroup"] == "0::/\n"
    assert mount_root(remount["proc_self_mountinfo"]) == "/"
    assert mount_root(plain["proc_self_mountinfo"]) == "/../.."
    # Remounted, the mount's root is the namespace root, /pod4/ctr.
    assert remount["visible"]["/sys/fs/cgroup/memory.max"] == s["files"]["/pod4/ctr/memory.max"]


def test_cgroupns_remounted_limit(vm):
    s = scenario(vm, "cgroupns")
    mem = wizard(s["wizard_remount"])["memory"]
    assert mem["limit_bytes"] == number(s["files"]["/pod4/ctr/memory.max"])


def test_cgroupns_not_remounted_limit(vm):
    s = scenario(vm, "cgroupns")
    mem = wizard(s["wizard_no_remount"])["memory"]
    assert mem["limit_bytes"] == number(s["files"]["/pod4/ctr/memory.max"])


def test_cgroupns_other_pods_kills_not_ours(vm):
    s = scenario(vm, "cgroupns")
    assert keyed(s["files"]["/pod4/ctr/memory.events"])["oom_kill"] == 0
    for run in (s["wizard_remount"], s["wizard_no_remount"]):
        assert oom_pids(wizard(run)) == []


def test_cgroupns_says_what_it_cannot_see(vm):
    s = scenario(vm, "cgroupns")
    remount = wizard(s["wizard_remount"])["memory"]
    plain = wizard(s["wizard_no_remount"])["memory"]
    assert remount["cgroup"]["namespace"] == plain["cgroup"]["namespace"] == "own"
    assert any("hidden" in n for n in remount["notes"])
    # Without a remount the cgroup is found by its pid below the host's root mount.
    assert plain["cgroup"]["path"] == "/pod4/ctr"
    assert plain["cgroup"]["host_view"] is True
    assert not any("/sys/fs/cgroup/memory.max" in e for e in plain["errors"])


def test_cgroupns_below_the_pod_limit_kernel_facts(vm):
    s = scenario(vm, "cgroupns_pod_limit")
    f, run = s["files"], s["wizard"]
    assert s["victim"]["returncode"] == -9
    assert number(f["/pod7/ctr/memory.max"]) is None  # the limit is the pod's, above the root
    assert keyed(f["/pod7/ctr/memory.events"])["oom_kill"] >= 1
    assert (s["victim"]["pid"], "/pod7/ctr") in kernel_kills(s["dmesg"])
    assert run["proc_self_cgroup"] == "0::/\n"
    assert mount_root(run["proc_self_mountinfo"]) == "/"


def test_cgroupns_below_the_pod_limit_says_and_uses_what_it_sees(vm):
    s = scenario(vm, "cgroupns_pod_limit")
    f = s["files"]
    mem = wizard(s["wizard"])["memory"]
    assert mem["limit_source"] == "host"
    notes = " ".join(mem["notes"])
    assert "a limit set above it (a pod's, say) would still apply and cannot be seen" in notes
    kills = keyed(f["/pod7/ctr/memory.events"])["oom_kill"]
    assert mem["oom_kills"] == kills
    assert f"counts {kills} OOM kill(s) in its cgroups (memory.events)" in notes
    assert mem["peak_bytes"] == number(f["/pod7/ctr/memory.peak"])
    # the kernel log names the victim by its host path: not provably this namespace's
    assert s["victim"]["pid"] not in oom_pids(wizard(s["wizard"]))


# -- e. pids.max on the pod, forks refused in its child ----------------------------


def test_pids_kernel_facts(vm):
    s = scenario(vm, "pids_limit")
    f = s["files"]
    refused = int(s["forker"]["forked"].split()[-1])
    assert refused > 0
    # Refused forks count in the cgroup that forked, not in the limiting one.
    assert keyed(f["/pod5/ctr/pids.events"])["max"] == refused
    assert keyed(f["/pod5/pids.events"])["max"] == 0
    assert any("fork rejected by pids controller in /pod5/ctr" in x for x in s["dmesg"])


def test_pids_limit_is_the_pods(vm):
    s = scenario(vm, "pids_limit")
    pids = wizard(s["wizard"])["memory"]["pids"]
    assert pids["max"] == number(s["files"]["/pod5/pids.max"])
    assert pids["path"] == "/pod5"


def test_pids_refused_forks_seen(vm):
    s = scenario(vm, "pids_limit")
    pids = wizard(s["wizard"])["memory"]["pids"]
    assert pids["events_max"] == keyed(s["files"]["/pod5/ctr/pids.events"])["max"]


# -- f. wizard run --memory-limit inside a container -------------------------------


def test_run_in_container_kernel_facts(vm):
    s = scenario(vm, "run_in_container")
    assert s["files_before"]["/pod6/cgroup.procs"].split()  # a container: processes inside
    assert wizard(s["wizard_json"])["exit_code"] == 1


def test_run_in_container_uses_a_child_cgroup(vm):
    s = scenario(vm, "run_in_container")
    report = wizard(s["wizard_json"])
    before = keyed(s["files_before"]["/pod6/memory.events"])["oom_kill"]
    after = keyed(s["files"]["/pod6/memory.events"])["oom_kill"]
    assert report["memory"]["limit_mode"].startswith("cgroup v2")
    assert report["signal"] and report["signal"]["name"] == "SIGKILL"
    assert report["memory"]["oom_kills"] == after - before >= 1
    # What was done to make it possible is said.
    assert "wizard-leaf" in report["memory"]["limit_note"]
    # The next run, from the leaf, makes its cgroup beside it: a real kill again.
    assert s["leaf"] == "pod6/wizard-leaf"
    assert "SIGKILL" in s["wizard_text"]["stdout"]
    assert "address space" not in s["wizard_text"]["stdout"]


# -- g. a kernel in its own cgroup, the wizard in a terminal outside it --------------


def test_kernel_cgroup_is_the_kernels(vm):
    s = scenario(vm, "kernel_cgroup")
    f, report = s["files"], wizard(s["wizard"])
    (k,) = [k for k in report["kernels"] if k["pid"] == s["kernel"]["pid"]]
    assert k["cgroup"]["path"] == "/pod8/kern"
    assert k["cgroup"]["limit_bytes"] == number(f["/pod8/memory.max"])
    assert k["cgroup"]["limit_path"] == "/pod8"
    assert k["cgroup"]["pids_max"] == number(f["/pod8/pids.max"])
    assert k["cgroup"]["oom_kills"] == keyed(f["/pod8/memory.events"])["oom_kill"]
    # The wizard's own cgroup has no limit: the kernels' cgroup is named beside it.
    assert report["memory"]["cgroup"]["path"] == "/term"
    assert [c["path"] for c in report["memory"]["kernel_cgroups"]] == ["/pod8/kern"]
    assert "not-shown" not in s["wizard"]["stdout"]


def test_kernel_cgroup_limit_column(vm):
    s = scenario(vm, "kernel_cgroup")
    text = s["wizard_text"]["stdout"]
    (row,) = [line for line in text.splitlines() if line.split()[:1] == [str(s["kernel"]["pid"])]]
    share = int(next(w for w in row.split() if w.endswith("%"))[:-1])
    assert 20 <= share <= 40  # ~100 MiB of the kernel's own 400 MiB, not of the host's RAM
    assert "kernels' cgroup /pod8/kern" in text


# -- h. a long kernel log, newest kills at its end ----------------------------------


def test_busy_log_kernel_facts(vm):
    s = scenario(vm, "busy_log")
    assert s["dmesg_filler_lines"] == s["noise_lines"]  # the log kept every line
    kills = [pid for pid, cg in kernel_kills(s["dmesg"]) if cg == "/pod7/ctr"]
    assert kills == [v["pid"] for v in s["victims"]]


def test_busy_log_newest_kill_found(vm):
    s = scenario(vm, "busy_log")
    report = wizard(s["wizard"])
    kills = [pid for pid, cg in kernel_kills(s["dmesg"]) if cg == "/pod7/ctr"]
    assert oom_pids(report)[-len(kills) :] == kills
    assert len(oom_pids(report)) == keyed(s["files"]["/pod7/memory.events"])["oom_kill"]
    assert report["memory"]["oom_log_status"] == "ok"  # read to its end, not cut
