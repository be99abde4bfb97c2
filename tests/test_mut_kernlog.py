"""wizard.system.kernlog on kernel-log lines as kernels write them: kills, faults, their context."""

import pytest
from fixtures_memory import build

from wizard.engines.evidence import Evidence
from wizard.system import kernlog

SIZES = "total-vm:100kB, anon-rss:10kB, file-rss:2kB, shmem-rss:1kB, UID:0"


def kill(pid, name="python3", prefix="", sizes=SIZES):
    return f"{prefix}Killed process {pid} ({name}) {sizes}"


# -- sizes -----------------------------------------------------------------------


def test_kb_reads_one_size():
    assert kernlog._kb("total-vm:5kB", "total-vm:") == 5 * 1024
    assert kernlog._kb("x anon-rss:0kB", "anon-rss:") == 0
    assert kernlog._kb("anon-rss:" + "9" * 15 + "kB", "anon-rss:") == int("9" * 15) * 1024
    assert kernlog._kb("anon-rss:" + "9" * 16 + "kB", "anon-rss:") is None
    assert kernlog._kb("anon-rss:123", "anon-rss:") is None
    assert kernlog._kb("anon-rss:kB", "anon-rss:") is None
    assert kernlog._kb("anon-rss:12MB", "anon-rss:") is None
    assert kernlog._kb("anon-rss:\u0661\u0662kB", "anon-rss:") is None
    assert kernlog._kb("file-rss:1kB", "anon-rss:") is None


# -- kill lines --------------------------------------------------------------------


def test_parse_kill_of_each_form():
    assert kernlog.parse_kill(kill(2230, prefix="Memory cgroup out of memory: ")) == {
        "pid": 2230,
        "name": "python3",
        "rss_bytes": 13 * 1024,
        "total_vm_bytes": 100 * 1024,
        "cgroup_oom": True,
    }
    assert kernlog.parse_kill(kill(7, prefix="Out of memory: "))["cgroup_oom"] is False
    assert kernlog.parse_kill(kill(7))["cgroup_oom"] is None
    old = kernlog.parse_kill("Killed process 7, UID 0, (python3) total-vm:4kB, anon-rss:3kB")
    assert old == {
        "pid": 7,
        "name": "python3",
        "rss_bytes": 3 * 1024,
        "total_vm_bytes": 4 * 1024,
        "cgroup_oom": None,
    }


def test_parse_kill_bounds_of_the_pid():
    assert kernlog.parse_kill(kill(1, "init"))["pid"] == 1
    assert kernlog.parse_kill(kill(1234567890))["pid"] == 1234567890
    assert kernlog.parse_kill(kill(12345678901)) is None
    assert kernlog.parse_kill(kill(0)) is None
    assert kernlog.parse_kill("Killed process 123") is None
    assert kernlog.parse_kill("Killed process (python3) total-vm:1kB") is None
    assert kernlog.parse_kill("Killed process 5(x)") == {
        "pid": 5,
        "name": "x",
        "rss_bytes": None,
        "total_vm_bytes": None,
        "cgroup_oom": None,
    }


def test_parse_kill_of_odd_process_names():
    # a name may hold parentheses, even the words the parser looks for (15 characters)
    assert kernlog.parse_kill(kill(9, "a) (b"))["name"] == "a) (b"
    assert kernlog.parse_kill(kill(9, "Killed process "))["pid"] == 9
    named = kernlog.parse_kill(kill(9, "x (y)", sizes=SIZES + " note (z)"))
    assert named["name"] == "x (y)"
    assert named["rss_bytes"] == 13 * 1024
    # a name that reads like a size (a process can name itself so) is not taken for one
    spoof = kernlog.parse_kill(kill(9, "anon-rss:999kB"))
    assert (spoof["name"], spoof["rss_bytes"]) == ("anon-rss:999kB", 13 * 1024)
    spoof = kernlog.parse_kill(kill(9, "total-vm:999kB"))
    assert (spoof["name"], spoof["total_vm_bytes"]) == ("total-vm:999kB", 100 * 1024)
    assert kernlog.parse_kill("Killed process 9 ) (python3 total-vm:1kB") is None
    assert kernlog.parse_kill("Killed process 9 (python3") is None


# -- kills over a log ------------------------------------------------------------------


def test_kills_of_a_pre_5_memcg_report_and_a_host_report():
    entries = [
        (1.0, "Task in /a killed as a result of limit of /a"),
        (1.0, "memory: usage 1024kB, limit 1024kB, failcnt 9"),
        (1.0, "Tasks state (memory values in pages):"),
        (1.5, kill(11)),
        (2.0, "python3 invoked oom-killer: gfp_mask=0x6200ca(GFP_HIGHUSER_MOVABLE)"),
        (2.0, "Mem-Info:"),
        (2.0, "Out of memory: Kill process 12 (python3) score 900 or sacrifice child"),
        (2.5, kill(12)),
        (3.0, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0"),
        (3.5, kill(13)),
        (4.0, "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0"),
        (4.5, kill(14)),
        (5.0, kill(15)),
    ]
    found = kernlog.kills(entries, btime=1000)
    assert [(k["pid"], k["cgroup_oom"], k["time"]) for k in found] == [
        (11, True, 1001.5),
        (12, False, 1002.5),
        (13, True, 1003.5),
        (14, False, 1004.5),
        (15, False, 1005.0),
    ]
    # the pre-4.19 "Task in /a killed as a result of limit of /a" names the cgroups
    assert (found[0]["memcg"], found[0]["limit_memcg"]) == ("/a", "/a")
    assert all(k["memcg"] is None for k in found[1:])


def test_kills_take_the_memcg_from_the_oom_kill_line_only():
    entries = [
        (None, "oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/user/job,task=python3,pid=5"),
        (None, kill(5, prefix="Memory cgroup out of memory: ")),
        (None, "audit: note task_memcg=/spoof, other"),
        (None, kill(6, prefix="Out of memory: ")),
        (None, "oom-kill:constraint=CONSTRAINT_NONE,task_memcg=,task=x,pid=7"),
        (None, kill(7, prefix="Out of memory: ")),
        (
            None,
            "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/u,task_memcg=/u/task_memcg=x,pid=8",
        ),
        (None, kill(8, prefix="Memory cgroup out of memory: ")),
    ]
    found = kernlog.kills(entries, btime=1000)
    assert [(k["pid"], k["memcg"], k["time"]) for k in found] == [
        (5, "/user/job", None),
        (6, None, None),
        (7, None, None),
        (8, "/u/task_memcg=x", None),
    ]
    assert kernlog.kills([(2.0, kill(8))])[0]["time"] is None


def test_kills_keep_the_most_recent():
    entries = [(float(i), kill(100 + i)) for i in range(9)]
    assert [k["pid"] for k in kernlog.kills(entries, keep=2)] == [107, 108]
    assert [k["pid"] for k in kernlog.kills(entries, keep=3)] == [106, 107, 108]
    assert kernlog.kills(entries, keep=0) == []
    assert len(kernlog.kills(entries * 10)) == 20
    skipped = [(1.0, "Killed process x"), (2.0, kill(5))]
    assert [k["pid"] for k in kernlog.kills(skipped)] == [5]


# -- faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg, out",
    [
        (
            "python3[1234]: segfault at 0 ip 00007f sp 00007ff error 4 in libc.so.6[7f00+1b0000]",
            (1234, "SIGSEGV"),
        ),
        ("traps: python3[88] general protection fault ip:7f sp:7ff error:0", (88, "SIGSEGV")),
        (
            "traps: python3[88] trap invalid opcode ip:7f sp:7ff error:0 in x.so[7f+1]",
            (88, "SIGILL"),
        ),
        ("traps: python3[88] trap divide error ip:7f", (88, "SIGFPE")),
        ("traps: python3[88] trap int3 ip:7f", (88, "SIGTRAP")),
        ("python3[88]: bus error at 7f", (88, "SIGBUS")),
        ("a[b][77]: segfault at 0", (77, "SIGSEGV")),
        ("[12]: segfault at 0", (12, "SIGSEGV")),
        ("x[1234567890]: segfault at 0", (1234567890, "SIGSEGV")),
        ("x[12345678901]: segfault at 0", None),
        ("1234]: segfault at 0", None),
        ("x[]: segfault at 0", None),
        ("x[1a]: segfault at 0", None),
        ("x[\u0661]: segfault at 0", None),
        ("python3[5]: exited", None),
        ("]: segfault at [5]: segfault at 0 ip 1", (5, "SIGSEGV")),  # a 15-character name
    ],
)
def test_parse_fault(msg, out):
    assert kernlog.parse_fault(msg) == out


# -- the log ---------------------------------------------------------------------------


def test_oom_log_keeps_what_it_is_asked_to(tmp_path):
    records = "".join(
        f"3,{i},{i * 1_000_000},-;{kill(300 + i, prefix='Out of memory: ')}\n" for i in range(3)
    )
    root = build(tmp_path, {"/dev/kmsg": records, "/proc/stat": "btime 500\n"})
    found, status = kernlog.oom_log(root, keep=2)
    assert status == "ok"
    assert [(k["pid"], k["time"]) for k in found] == [(301, 501.0), (302, 502.0)]
    found, _ = kernlog.oom_log(root)
    assert [k["pid"] for k in found] == [300, 301, 302]


def test_oom_log_says_when_the_read_was_cut(tmp_path, monkeypatch):
    entries = [(1.0, kill(301, prefix="Out of memory: "))]
    monkeypatch.setattr(
        kernlog.kmsg, "read_kmsg_tail", lambda root: (entries, None, "the newest were not read")
    )
    root = build(tmp_path, {"/proc/stat": "btime 500\n"})
    found, status = kernlog.oom_log(root)
    assert status == "cut: the newest were not read"
    assert [(k["pid"], k["time"]) for k in found] == [(301, 501.0)]
    monkeypatch.setattr(kernlog.kmsg, "read_kmsg_tail", lambda root: ([], None, "after 9 records"))
    assert kernlog.oom_log(root) == ([], "cut: after 9 records")


# -- the recorder's evidence -----------------------------------------------------------


def test_evidence_keeps_kills_and_faults_by_pid():
    ev = Evidence()
    ev.feed(None)
    ev.feed([])
    ev.feed(
        [
            (100.0, kill(5, prefix="Memory cgroup out of memory: ")),
            (101.0, "Killed process garbage"),
            (102.0, "python3[6]: segfault at 0 ip 1"),
            (103.0, "unrelated line"),
        ]
    )
    assert ev.kills == {5: {"time": 100.0, "rss_bytes": 13 * 1024, "cgroup_oom": True}}
    assert ev.faults == {6: (102.0, "SIGSEGV")}
    assert ev.about(5) == ({"time": 100.0, "rss_bytes": 13 * 1024, "cgroup_oom": True}, None)
    assert ev.about(6) == (None, "SIGSEGV")
    assert ev.about(7) == (None, None)


def test_evidence_about_a_pid_after_the_process_started():
    ev = Evidence()
    ev.feed([(100.0, kill(5)), (100.0, "python3[5]: segfault at 0"), (None, "x[8]: bus error")])
    ev.feed([(None, kill(9))])
    assert ev.about(5, since=105.0)[0]["time"] == 100.0  # within the 5 s slack
    assert ev.about(5, since=105.0)[1] == "SIGSEGV"
    assert ev.about(5, since=105.1) == (None, None)
    assert ev.about(8, since=1e9) == (None, "SIGBUS")  # no time: cannot be ruled out
    assert ev.about(9, since=1e9)[0] == {"time": None, "rss_bytes": 13 * 1024, "cgroup_oom": None}


def test_evidence_feed_kills_adds_without_overwriting():
    ev = Evidence()
    ev.feed([(100.0, kill(5, prefix="Out of memory: "))])
    ev.feed_kills(None)
    ev.feed_kills(
        [
            {"pid": 5, "time": 1.0, "rss_bytes": 1},
            {"pid": 6, "time": 2.0, "rss_bytes": 2, "cgroup_oom": True},
            {"pid": 0, "time": 3.0},
            {"pid": None},
            {"pid": 7},
        ]
    )
    assert ev.kills == {
        5: {"time": 100.0, "rss_bytes": 13 * 1024, "cgroup_oom": False},
        6: {"time": 2.0, "rss_bytes": 2, "cgroup_oom": None},
        7: {"time": None, "rss_bytes": None, "cgroup_oom": None},
    }


def test_evidence_prune_forgets_what_is_older_than_ten_minutes():
    ev = Evidence()
    ev.feed(
        [
            (399.0, kill(1)),
            (400.0, kill(2)),
            (None, kill(3)),
            (399.0, "p[4]: segfault at 0"),
            (400.0, "p[5]: segfault at 0"),
            (None, "p[6]: segfault at 0"),
        ]
    )
    ev.prune(1000.0)
    assert sorted(ev.kills) == [2, 3]
    assert sorted(ev.faults) == [5, 6]
    assert Evidence.KEEP_SECONDS == 600


# -- group kills (memory.oom.group) ------------------------------------------------------

MEMCG = "Memory cgroup out of memory: "


def oom_kill_line(memcg, pid):
    return f"oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg={memcg},task=python,pid={pid}"


def group_line(cgroup):
    return f"Tasks in {cgroup} are going to be killed due to memory.oom.group set"


def seen(found):
    return [(k["pid"], k["memcg"], k["group_kill"], k["cgroup_oom"]) for k in found]


def test_group_kill_members_take_the_groups_cgroup():
    entries = [
        (1.0, "python invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0"),
        (1.0, oom_kill_line("/pod/ctr/job", 5)),
        (1.1, kill(5, prefix=MEMCG)),
        (1.2, group_line("/pod/ctr")),
        (1.3, kill(6, prefix=MEMCG)),
        (1.3, kill(5, prefix=MEMCG)),  # the first victim, named again
        (1.3, kill(7, prefix=MEMCG)),
    ]
    assert seen(kernlog.kills(entries, btime=100)) == [
        (5, "/pod/ctr/job", True, True),
        (6, "/pod/ctr", True, True),
        (7, "/pod/ctr", True, True),
    ]
    assert [k["time"] for k in kernlog.kills(entries, btime=100)] == [101.1, 101.3, 101.3]


def test_a_group_ends_where_the_next_oom_begins():
    m5, m8, m9 = kill(5, prefix=MEMCG), kill(8, prefix=MEMCG), kill(9, prefix=MEMCG)
    group = [(None, oom_kill_line("/g/a", 5)), (None, m5), (None, group_line("/g"))]
    invoked = [(None, "sh invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)"), (None, m8)]
    assert seen(kernlog.kills(group + invoked)) == [
        (5, "/g/a", True, True),
        (8, None, False, True),
    ]
    summary = [(None, "oom-kill:constraint=CONSTRAINT_NONE,task=sh,pid=8"), (None, kill(8))]
    assert seen(kernlog.kills(group + summary)) == [
        (5, "/g/a", True, True),
        (8, None, False, False),
    ]
    # a new OOM: a process killed in the last one can be killed again, and is counted
    again = [(None, oom_kill_line("/h/b", 9)), (None, m9), (None, group_line("/h"))]
    assert seen(kernlog.kills(group + again + [(None, m5)])) == [
        (5, "/g/a", True, True),
        (9, "/h/b", True, True),
        (5, "/h", True, True),
    ]


def test_without_a_group_a_pid_killed_twice_is_two_kills():
    entries = [(None, oom_kill_line("/a", 5)), (None, kill(5)), (None, kill(5))]
    assert seen(kernlog.kills(entries)) == [(5, "/a", False, True), (5, None, False, False)]


def test_a_group_line_without_a_cgroup_starts_no_group():
    entries = [(None, group_line("")), (None, kill(6)), (None, kill(6))]
    assert seen(kernlog.kills(entries)) == [(6, None, False, False), (6, None, False, False)]


def test_only_the_kernels_group_line_starts_a_group():
    entries = [
        (None, "Tasks in /g are going to be killed due to memory.oom.group set, really"),
        (None, kill(6)),
        (None, "Tasks in /g are going to be killed"),
        (None, kill(7)),
        (None, "note: Tasks in /g are going to be killed due to memory.oom.group set"),
        (None, kill(8)),
    ]
    assert seen(kernlog.kills(entries)) == [
        (6, None, False, False),
        (7, None, False, False),
        (8, None, False, False),
    ]
