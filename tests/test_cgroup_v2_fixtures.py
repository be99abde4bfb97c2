"""cgroup v2 as the guest's kernel showed it (FACTS.md), as fixture trees: group kills,
namespaces, memory.high, refused forks, a cut kernel log."""

import os

import pytest
from fixtures_memory import build, host_files

from wizard.probes import memory
from wizard.system import cgroup_files, kernlog, kmsg
from wizard.system.cgroups import View, climb, is_inside
from wizard.system.sysroot import SysRoot

# The 6.1 kernel's lines for a memory.oom.group kill: the victim (162) twice.
GROUP_LOG = [
    (10.0, "python invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"),
    (
        10.1,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/pod2,task_memcg=/pod2/ctr,task=python,pid=162,uid=0",
    ),
    (10.2, "Memory cgroup out of memory: Killed process 162 (python) total-vm:1kB, anon-rss:2kB"),
    (10.3, "Tasks in /pod2/ctr are going to be killed due to memory.oom.group set"),
    (10.4, "Memory cgroup out of memory: Killed process 150 (sleep) total-vm:1kB, anon-rss:1kB"),
    (10.4, "Memory cgroup out of memory: Killed process 151 (sleep) total-vm:1kB, anon-rss:1kB"),
    (10.4, "Memory cgroup out of memory: Killed process 162 (python) total-vm:1kB, anon-rss:2kB"),
    (20.0, "sh invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"),
    (
        20.1,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/pod,task_memcg=/pod/ctr,task=sh,pid=170,uid=0",
    ),
    (20.2, "Memory cgroup out of memory: Killed process 170 (sh) total-vm:1kB, anon-rss:1kB"),
]


def test_group_kill_members_inherit_the_cgroup_and_the_victim_is_kept_once():
    found = kernlog.kills(GROUP_LOG, btime=1000)
    assert [(k["pid"], k["memcg"], k["group_kill"]) for k in found] == [
        (162, "/pod2/ctr", True),
        (150, "/pod2/ctr", True),
        (151, "/pod2/ctr", True),
        (170, "/pod/ctr", False),  # the group is over: the next OOM has its own cgroup
    ]


def test_ours_only_inside_our_cgroup():
    found = kernlog.kills(GROUP_LOG, btime=1000)
    ours, elsewhere = memory.split_kills(found, "/other", False)
    assert ours == [] and len(elsewhere) == 4
    ours, _ = memory.split_kills(found, "/pod", False)
    assert [k["pid"] for k in ours] == [170]  # /pod2/ctr is not inside /pod
    assert not is_inside("/pod2/ctr", "/pod")


def test_climb():
    assert climb("/../..") == (2, ())
    assert climb("/") == (0, ())
    assert climb("/docker/abc") == (0, ("docker", "abc"))
    assert climb("/../../x") == (2, ("x",))


MOUNT_V2 = "30 23 0:26 {root} /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"


def v2_tree(tmp_path, mount_root, own="/", ns="cgroup:[4026532000]"):
    files = host_files()
    files |= {
        "/proc/self/cgroup": f"0::{own}\n",
        "/proc/self/mountinfo": MOUNT_V2.format(root=mount_root),
        "/proc/self/ns/cgroup": ns + "\n",
        "/proc/self/stat": "4242 (python) S 1 4242\n",
        "/sys/fs/cgroup/cgroup.controllers": "memory pids\n",
        "/sys/fs/cgroup/cgroup.procs": "1\n",
        "/sys/fs/cgroup/pod4/cgroup.procs": "",
        "/sys/fs/cgroup/pod4/memory.max": str(300 << 20) + "\n",
        "/sys/fs/cgroup/pod4/memory.current": "1000\n",
        "/sys/fs/cgroup/pod4/ctr/cgroup.procs": "4242\n4243\n",
        "/sys/fs/cgroup/pod4/ctr/memory.max": str(200 << 20) + "\n",
        "/sys/fs/cgroup/pod4/ctr/memory.current": "500\n",
        "/sys/fs/cgroup/pod4/ctr/memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        "/sys/fs/cgroup/other/cgroup.procs": "99\n",
        "/sys/fs/cgroup/other/memory.current": "5\n",
        "/dev/kmsg": "3,1,5000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/pod/ctr,"
        "task=python,pid=162,uid=0\n3,2,5000001,-;Memory cgroup out of memory: Killed process "
        "162 (python) total-vm:1kB, anon-rss:2kB\n",
    }
    return build(tmp_path, files)


def test_namespace_without_a_remount_is_found_by_pid(tmp_path):
    root = v2_tree(tmp_path, "/../..")
    out = memory.probe(root)
    assert out["cgroup"]["path"] == "/pod4/ctr"
    assert out["limit_bytes"] == 200 << 20  # not the real root's (none)
    assert out["cgroup"]["namespace"] == "own" and out["cgroup"]["host_view"] is True
    assert any("found by its pid" in n for n in out["notes"])
    assert out["oom_log"] == [] and [k["pid"] for k in out["oom_log_elsewhere"]] == [162]


def test_namespace_unresolved_is_said_never_the_global_root(tmp_path):
    root = v2_tree(tmp_path, "/../..")
    os.remove(root.path("/sys/fs/cgroup/pod4/ctr/cgroup.procs"))  # nowhere to find us
    view = View(root)
    assert view.levels("cgroup2", "/") is None
    assert any("cgroup namespace" in e and "limit is unknown" in e for e in view.errors)


def test_namespace_remounted_reads_its_root_and_says_ancestors_are_hidden(tmp_path):
    root = v2_tree(tmp_path, "/")
    # remounted: the namespace root (/pod4/ctr) is the mount's root
    for name in ("memory.max", "memory.current", "memory.events", "cgroup.procs"):
        src = root.path(f"/sys/fs/cgroup/pod4/ctr/{name}")
        with open(src) as f, open(root.path(f"/sys/fs/cgroup/{name}"), "w") as g:
            g.write(f.read())
    out = memory.probe(root)
    assert out["limit_bytes"] == 200 << 20
    assert out["cgroup"]["namespace"] == "own" and out["cgroup"]["host_view"] is False
    assert any("hidden" in n for n in out["notes"])
    assert out["oom_log"] == []  # no host path in the log is provably ours


def test_refused_forks_summed_up_to_the_limiting_cgroup(tmp_path):
    base = "/sys/fs/cgroup"
    root = build(
        tmp_path,
        {
            f"{base}/pod5/pids.max": "20\n",
            f"{base}/pod5/pids.current": "3\n",
            f"{base}/pod5/pids.events": "max 0\n",
            f"{base}/pod5/ctr/pids.max": "max\n",
            f"{base}/pod5/ctr/pids.current": "3\n",
            f"{base}/pod5/ctr/pids.events": "max 21\n",
        },
    )
    levels = [(f"{base}/pod5/ctr", "/pod5/ctr"), (f"{base}/pod5", "/pod5"), (base, "/")]
    pids = cgroup_files.read_pids(root, levels, [])
    assert pids == {"max": 20, "current": 3, "events_max": 21, "path": "/pod5"}


def test_memory_high_and_group_flags(tmp_path):
    base = "/sys/fs/cgroup"
    root = build(
        tmp_path,
        {
            f"{base}/pod3/memory.high": str(300 << 20) + "\n",
            f"{base}/pod3/memory.events": "low 0\nhigh 4521\nmax 0\noom 0\noom_kill 0\n",
            f"{base}/pod3/ctr/memory.high": "max\n",
            f"{base}/pod3/ctr/memory.oom.group": "1\n",
            f"{base}/pod3/ctr/memory.events": "oom_group_kill 1\n",
        },
    )
    levels = [(f"{base}/pod3/ctr", "/pod3/ctr"), (f"{base}/pod3", "/pod3"), (base, "/")]
    errors = []
    assert cgroup_files.read_high(root, levels, errors) == {
        "high_bytes": 300 << 20,
        "high_path": "/pod3",
        "high_events": 4521,
    }
    assert cgroup_files.read_oom_group(root, levels, 0, errors) == (True, 1)
    assert errors == []


@pytest.fixture
def long_kmsg(tmp_path, monkeypatch):
    """A /dev/kmsg of 3000 records that reads like the device: one record per read(),
    EAGAIN at the end (a FIFO stands in for the character device, so it is no regular file)."""
    dev = tmp_path / "dev"
    dev.mkdir()
    os.mkfifo(dev / "kmsg")
    records = [f"6,{i},{i * 1000},-;record {i}\n".encode() for i in range(2999)] + [
        b"3,2999,2999000,-;Out of memory: Killed process 4321 (python3) total-vm:8kB\n"
    ]
    real_open, real_read, opened = os.open, os.read, {}

    def fake_open(path, flags, *args):
        if str(path) == str(dev / "kmsg"):
            fd = real_open(os.devnull, os.O_RDONLY)
            opened[fd] = iter(records)
            return fd
        return real_open(path, flags, *args)

    def fake_read(fd, n):
        if fd in opened:
            try:
                return next(opened[fd])
            except StopIteration:
                raise BlockingIOError(11, "Resource temporarily unavailable") from None
        return real_read(fd, n)

    real_fstat = os.fstat

    def fake_fstat(fd):
        return os.stat(dev / "kmsg") if fd in opened else real_fstat(fd)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "read", fake_read)
    monkeypatch.setattr(os, "fstat", fake_fstat)
    return SysRoot(str(tmp_path))


def test_a_long_kernel_log_is_read_to_its_end(long_kmsg):
    entries, reason, cut = kmsg.read_kmsg_tail(long_kmsg)
    assert reason is None and cut is None  # the whole log within the budget
    assert len(entries) == 3000
    assert entries[0] == (0.0, "record 0") and entries[-1][0] == pytest.approx(2.999)
    assert kernlog.kills(entries)[-1]["pid"] == 4321


def test_a_cut_kernel_log_is_said(long_kmsg):
    entries, _, cut = kmsg.read_kmsg_tail(long_kmsg, max_seconds=0)
    assert cut and "newest records were not read" in cut
    assert cut.startswith("read 512 records")
    assert len(entries) == 512 and entries[-1][1] == "record 511"
    entries, _, cut = kmsg.read_kmsg_tail(long_kmsg, max_records=100)
    assert cut is None and [e[1] for e in entries[:1]] == ["record 2900"]


def test_namespace_root_below_the_limit_says_what_it_cannot_see(tmp_path):
    """A pod's limit above a container with its own cgroup namespace, remounted: the
    namespace's root has no memory.max of its own, only its peak and its kill count."""
    root = v2_tree(tmp_path, "/")
    own = {
        "memory.max": "max\n",
        "memory.current": str(150 << 20) + "\n",
        "memory.peak": str(299 << 20) + "\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
        "cgroup.procs": "4242\n",
    }
    for name, text in own.items():
        with open(root.path(f"/sys/fs/cgroup/{name}"), "w") as f:
            f.write(text)
    out = memory.probe(root)
    assert out["limit_source"] == "host"
    assert out["peak_bytes"] == 299 << 20
    assert out["oom_kills"] == 1
    notes = " ".join(out["notes"])
    assert "a limit set above it (a pod's, say) would still apply and cannot be seen" in notes
    assert "counts 1 OOM kill(s) in its cgroups (memory.events)" in notes
    assert "hidden" in notes  # the cgroups above the root
    assert out["oom_log"] == []  # the log's host paths are still not provably ours
