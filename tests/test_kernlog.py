"""Parsing OOM kills out of the kernel log, and reading it (fixtures, and this machine's)."""

import os
import sys
import time

import pytest
from conftest import need
from fixtures_memory import build
from hypothesis import given, settings
from hypothesis import strategies as st

from wizard.system import kernlog, kmsg
from wizard.system.sysroot import SysRoot

MEMCG = (
    "Memory cgroup out of memory: Killed process 2230 (python3) total-vm:323784kB, "
    "anon-rss:101888kB, file-rss:4608kB, shmem-rss:512kB, UID:0 pgtables:300kB oom_score_adj:0"
)
HOST = (
    "Out of memory: Killed process 4321 (ipykernel_launc) total-vm:9000000kB, "
    "anon-rss:7000000kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14000kB "
    "oom_score_adj:0"
)
KMSG = f"""\
6,1200,5000000,-;python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0
4,1201,5000100,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,\
mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=python3,pid=2230,uid=0
3,1202,5000200,-;{MEMCG}
 SUBSYSTEM=memory
 DEVICE=+memory:x
6,1203,5000300,-;oom_reaper: reaped process 2230 (python3), now anon-rss:0kB, file-rss:0kB
3,1204,9000000,-;{HOST}
"""


def test_kmsg_record():
    assert kmsg.parse_kmsg_record("6,1234,5678901,-;Hello\n SUBSYSTEM=x\n") == (
        5678901,
        "Hello",
    )
    assert kmsg.parse_kmsg_record("6,1,2,c,extra;a;b") == (2, "a;b")
    for bad in ["", "no semicolon", "6,1;short header", "6,1,x,-;bad usec", "6,1,-5,-;neg"]:
        assert kmsg.parse_kmsg_record(bad) is None


def test_dmesg_line():
    assert kmsg.parse_dmesg_line("[  583.149745] Memory cgroup out") == (
        583.149745,
        "Memory cgroup out",
    )
    assert kmsg.parse_dmesg_line("<3>[    1.5] x") == (1.5, "x")
    assert kmsg.parse_dmesg_line("no stamp") == (None, "no stamp")
    assert kmsg.parse_dmesg_line("[nan] x") == (None, "x")
    assert kmsg.parse_dmesg_line("[abc] x")[0] is None


def test_parse_memcg_kill():
    assert kernlog.parse_kill(MEMCG) == {
        "pid": 2230,
        "name": "python3",
        "rss_bytes": (101888 + 4608 + 512) * 1024,
        "total_vm_bytes": 323784 * 1024,
        "cgroup_oom": True,
    }


def test_parse_host_kill():
    kill = kernlog.parse_kill(HOST)
    assert kill["pid"] == 4321 and kill["name"] == "ipykernel_launc"
    assert kill["cgroup_oom"] is False
    assert kill["rss_bytes"] == 7000000 * 1024


def test_parse_old_forms():
    # 4.x: the kill line alone; whether a cgroup did it is in the lines before.
    old = "Killed process 77 (R) total-vm:1000kB, anon-rss:500kB, file-rss:20kB, shmem-rss:0kB"
    assert kernlog.parse_kill(old) == {
        "pid": 77,
        "name": "R",
        "rss_bytes": 520 * 1024,
        "total_vm_bytes": 1000 * 1024,
        "cgroup_oom": None,
    }
    # 2.6.32 (RHEL 6)
    rhel6 = "Killed process 99, UID 500, (java) total-vm:2000kB, anon-rss:100kB, file-rss:4kB"
    kill = kernlog.parse_kill(rhel6)
    assert (kill["pid"], kill["name"], kill["rss_bytes"]) == (99, "java", 104 * 1024)
    # a name with spaces and parentheses
    kill = kernlog.parse_kill("Out of memory: Killed process 5 (Web (x) Co) total-vm:1kB")
    assert kill["name"] == "Web (x) Co" and kill["rss_bytes"] is None


def test_old_forms_take_cgroup_oom_from_context():
    entries = [
        (10.0, "Memory cgroup out of memory: Kill process 77 (R) score 999 or sacrifice child"),
        (10.1, "Killed process 77 (R) total-vm:1000kB, anon-rss:500kB, file-rss:0kB"),
        (20.0, "Out of memory: Kill process 78 (sage) score 900 or sacrifice child"),
        (20.1, "Killed process 78 (sage) total-vm:1000kB, anon-rss:500kB, file-rss:0kB"),
        (30.0, "Task in /user/1 killed as a result of limit of /user"),
        (30.1, "Killed process 79 (julia) total-vm:1kB"),
        (40.1, "Killed process 80 (bare) total-vm:1kB"),
    ]
    found = kernlog.kills(entries, btime=1_700_000_000)
    assert [(k["pid"], k["cgroup_oom"]) for k in found] == [
        (77, True),
        (78, False),
        (79, True),
        (80, False),
    ]
    assert found[0]["time"] == pytest.approx(1_700_000_010.1)


def test_not_kills():
    for line in [
        "",
        "oom_reaper: reaped process 2230 (python3), now anon-rss:0kB, file-rss:0kB",
        "Killed process",
        "Killed process abc (x)",
        "Killed process 0 (x) total-vm:1kB",
        "Killed process 12 no parens",
        "Killed process 99999999999 (x)",
        "Out of memory: Killed process -3 (x)",
    ]:
        assert kernlog.parse_kill(line) is None, line


def test_kills_keeps_the_last():
    entries = [
        (float(i), f"Out of memory: Killed process {i + 1} (p) total-vm:1kB") for i in range(50)
    ]
    found = kernlog.kills(entries, btime=None, keep=20)
    assert [k["pid"] for k in found] == list(range(31, 51))
    assert all(k["time"] is None for k in found)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats()), st.text(max_size=200))))
def test_garbage_entries(entries):
    for kill in kernlog.kills(entries, btime=1):
        assert isinstance(kill["pid"], int) and kill["pid"] > 0
        assert isinstance(kill["cgroup_oom"], bool)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_garbage_lines(line):
    kmsg.parse_kmsg_record(line)
    kmsg.parse_dmesg_line(line)
    kill = kernlog.parse_kill(line)
    if kill is not None:
        assert kill["pid"] > 0 and "Killed process " in line
    kernlog.parse_kill("Memory cgroup out of memory: Killed process 12 (" + line)


def test_kmsg_fixture_file(tmp_path):
    root = build(tmp_path, {"/dev/kmsg": KMSG, "/proc/stat": "btime 1700000000\n"})
    found, status = kernlog.oom_log(root)
    assert status == "ok"
    assert found == [
        {
            "time": pytest.approx(1_700_000_005.0002),
            "pid": 2230,
            "name": "python3",
            "rss_bytes": (101888 + 4608 + 512) * 1024,
            "total_vm_bytes": 323784 * 1024,
            "cgroup_oom": True,
            "memcg": "/a/b",
            "limit_memcg": "/a",
            "group_kill": False,
        },
        {
            "time": pytest.approx(1_700_000_009.0),
            "pid": 4321,
            "name": "ipykernel_launc",
            "rss_bytes": 7000000 * 1024,
            "total_vm_bytes": 9000000 * 1024,
            "cgroup_oom": False,
            "memcg": None,
            "limit_memcg": None,
            "group_kill": False,
        },
    ]


def test_kmsg_without_kills_or_boot_time(tmp_path):
    root = build(tmp_path, {"/dev/kmsg": "6,1,1,-;hello\n\xff\xfe\n"})
    assert kernlog.oom_log(root) == ([], "empty")
    root = build(tmp_path / "b", {"/dev/kmsg": f"3,1,1000000,-;{HOST}\n"})
    found, status = kernlog.oom_log(root)
    assert status == "ok" and found[0]["time"] is None


def test_unreadable_fixture_never_runs_dmesg(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kmsg, "read_dmesg", lambda *a: calls.append(a) or ([], None))
    found, status = kernlog.oom_log(SysRoot(str(tmp_path)))
    assert found == [] and status == "unreadable: /dev/kmsg: No such file or directory"
    (tmp_path / "dev" / "kmsg").mkdir(parents=True)
    found, status = kernlog.oom_log(SysRoot(str(tmp_path)))
    assert status == "unreadable: /dev/kmsg: Is a directory"
    assert calls == []


class RealRoot(SysRoot):
    """The real system, with /dev/kmsg refused and dmesg_restrict set as given."""

    def __init__(self, restrict):
        super().__init__("/")
        self.restrict = restrict

    def path(self, p):
        return "/nonexistent-wizard-test" + p if p == kmsg.KMSG else p

    def read_text(self, p, limit=1 << 20):
        if p == "/proc/sys/kernel/dmesg_restrict":
            return self.restrict
        return super().read_text(p, limit)


def test_denied_kmsg_falls_back_to_dmesg_only_when_permitted(monkeypatch):
    need(hasattr(os, "geteuid"), "needs POSIX uids")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    denied = PermissionError(13, "Permission denied")
    real_open = os.open

    def fake_open(path, *a, **kw):
        if str(path).endswith(kmsg.KMSG):
            raise denied
        return real_open(path, *a, **kw)

    monkeypatch.setattr(kmsg.os, "open", fake_open)
    calls = []

    def fake_dmesg(*a):
        calls.append(a)
        return [(1.0, HOST)], None

    monkeypatch.setattr(kmsg, "read_dmesg", fake_dmesg)

    found, status = kernlog.oom_log(RealRoot("1\n"))
    assert found == [] and calls == []
    assert status == (
        "unreadable: /dev/kmsg: Permission denied "
        "(reading the kernel log needs root or kernel.dmesg_restrict=0)"
    )

    found, status = kernlog.oom_log(RealRoot("0\n"))
    assert len(calls) == 1 and status == "ok" and found[0]["pid"] == 4321

    monkeypatch.setattr(kmsg, "read_dmesg", lambda *a: (None, "dmesg failed: nope"))
    found, status = kernlog.oom_log(RealRoot("0\n"))
    assert status == "unreadable: /dev/kmsg: Permission denied; dmesg failed: nope"


def test_real_kmsg():
    need(sys.platform.startswith("linux") and os.geteuid() == 0, "reading /dev/kmsg needs root")
    t = time.monotonic()
    entries, reason = kmsg.read_kmsg(SysRoot("/"))
    took = time.monotonic() - t
    assert reason is None and entries, reason
    assert all(secs >= 0 for secs, _ in entries)
    assert took < 30, "reading the kernel log must end (its speed: benchmarks/bench_probes.py)"
    found, status = kernlog.oom_log(SysRoot("/"))
    assert status == ("ok" if found else "empty")


def test_real_dmesg():
    need(sys.platform.startswith("linux") and os.geteuid() == 0, "dmesg needs root here")
    records, _ = kmsg.read_kmsg(SysRoot("/"))
    entries, reason = kmsg.read_dmesg()
    need(reason != "dmesg is not installed", "dmesg is not installed")
    assert reason is None and entries
    # the same log as /dev/kmsg: what it held a moment ago is in dmesg's output
    assert records[-1][1].strip() in {m.strip() for _, m in entries}
    assert all(secs is not None for secs, _ in entries)


def test_kills_are_tied_to_the_victims_cgroup(tmp_path):
    """Only kills inside our cgroup's subtree are ours: the kernel log is the whole host's."""
    from wizard.probes import memory

    root = build(tmp_path, {"/dev/kmsg": KMSG, "/proc/stat": "btime 1700000000\n"})
    found, _ = kernlog.oom_log(root)
    mine = {"path": "/a", "limit_path": "/a", "limit_bytes": 1 << 30}
    other = {"path": "/z", "limit_path": "/z", "limit_bytes": 1 << 30}
    ours, elsewhere = memory.split_kills(found, memory.kill_scope(mine, "initial"), False)
    assert [k["pid"] for k in ours] == [2230]
    assert [k["pid"] for k in elsewhere] == [4321]  # memcg unknown: not provably ours
    ours, _ = memory.split_kills(found, memory.kill_scope(other, "initial"), False)
    assert ours == []
    assert memory.split_kills(found, "/", True) == (found, [])
