"""Which OOM kills are ours: the kernel log is the whole host's, our cgroup is one subtree.

A kill is counted when the kernel log's ``task_memcg`` lies inside the cgroup whose limit
applies to us, or inside our own cgroup when no limit applies. ``/ab`` is not inside ``/a``.
"""

import pytest
from fixtures_memory import GiB, MiB, build, v2_cgroup, v2_files

from wizard.probes import memory
from wizard.system import cgroups


def kill_record(seq, usec, pid, memcg):
    """The two /dev/kmsg records the kernel writes for one memory-cgroup OOM kill."""
    return (
        f"4,{seq},{usec},-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
        f"mems_allowed=0,oom_memcg={memcg},task_memcg={memcg},task=python3,pid={pid},uid=0\n"
        f"3,{seq + 1},{usec + 100},-;Memory cgroup out of memory: Killed process {pid} "
        "(python3) total-vm:323784kB, anon-rss:101888kB, file-rss:0kB, shmem-rss:0kB, UID:0\n"
    )


# pid -> the cgroup the kernel log names for its kill
KILLS = {
    101: "/a",
    102: "/a/b",
    103: "/a/b/c",
    104: "/ab",
    105: "/a/bc",
    106: "/a/x",
    107: "/z",
}


def probe_with_kills(tmp_path, own, cgs):
    files = v2_files(own, cgs)
    files["/dev/kmsg"] = "".join(
        kill_record(10 + 2 * i, 1_000_000 * (i + 1), pid, cg)
        for i, (pid, cg) in enumerate(KILLS.items())
    )
    out = memory.probe(build(tmp_path, files))
    assert out["oom_log_status"] == "ok", out["oom_log_status"]
    return sorted(k["pid"] for k in out["oom_log"])


def test_kills_under_the_limiting_cgroup_are_ours_and_a_sibling_prefix_is_not(tmp_path):
    pids = probe_with_kills(
        tmp_path,
        "/a/b",
        {"/": v2_cgroup(), "/a": v2_cgroup(max=GiB, current=100 * MiB), "/a/b": v2_cgroup()},
    )
    # /a limits us: kills anywhere under /a count; /ab, /a-like names and /z do not
    assert pids == [101, 102, 103, 105, 106]


def test_without_a_limit_only_our_own_cgroup_counts(tmp_path):
    pids = probe_with_kills(
        tmp_path,
        "/a/b",
        {"/": v2_cgroup(), "/a": v2_cgroup(), "/a/b": v2_cgroup()},
    )
    # no limit anywhere: the scope is our own cgroup /a/b, not the root or /a
    assert pids == [102, 103]


def test_a_limit_path_without_a_limit_does_not_widen_the_scope():
    """A cgroup that names where a limit would be but has none is scoped to itself."""
    kills = [{"pid": pid, "memcg": cg} for pid, cg in KILLS.items()]

    def ours(cgroup):
        return [
            k["pid"] for k in memory.split_kills(kills, memory.kill_scope(cgroup, None), False)[0]
        ]

    unlimited = {"path": "/a/b", "limit_path": "/a", "limit_bytes": None}
    assert ours(unlimited) == [102, 103]
    limited = dict(unlimited, limit_bytes=GiB)
    assert ours(limited) == [101, 102, 103, 105, 106]
    # "(inherited)" and the like after the path are not part of it
    inherited = {"path": "/a/b", "limit_path": "/a (inherited)", "limit_bytes": GiB}
    assert ours(inherited) == [101, 102, 103, 105, 106]
    # no cgroup known: nothing is provably ours, and everything is elsewhere
    ours_none, elsewhere = memory.split_kills(kills, memory.kill_scope(None, None), False)
    assert ours_none == [] and elsewhere == kills


def test_a_kill_the_log_does_not_place_is_not_counted_as_ours(tmp_path):
    """A host-wide kill line names no cgroup: it may be anyone's, so it is shown as
    elsewhere on this machine, never counted against our cgroup."""
    files = v2_files("/a/b", {"/": v2_cgroup(), "/a": v2_cgroup(max=GiB), "/a/b": v2_cgroup()})
    files["/dev/kmsg"] = (
        "3,11,2500000,-;Out of memory: Killed process 4321 (python3) total-vm:9000kB, "
        "anon-rss:7000kB, file-rss:0kB, shmem-rss:0kB, UID:1000\n"
    )
    out = memory.probe(build(tmp_path, files))
    assert out["oom_log"] == []
    assert [k["pid"] for k in out["oom_log_elsewhere"]] == [4321]
    assert out["oom_log_elsewhere"][0]["memcg"] is None


@pytest.mark.parametrize(
    ("path", "scope", "inside"),
    [
        ("/a", "/a", True),
        ("/a/b", "/a", True),
        ("/a/b/", "/a", True),
        ("/a/b/c", "/a/b", True),
        ("/ab", "/a", False),
        ("/a", "/ab", False),
        ("/a", "/a/b", False),
        ("/abc/d", "/ab", False),
        ("/anything", "/", True),
        ("/", "/", True),
        ("/", "/a", False),
        ("/a/../b", "/a", False),
        ("a/b", "/a", False),
        ("/a/b", "a", False),
        ("", "/a", False),
        (None, "/", False),
    ],
)
def test_is_inside(path, scope, inside):
    assert cgroups.is_inside(path, scope) is inside
