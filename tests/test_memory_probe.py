"""The memory probe against fixture trees (v2, v1, hybrid, none, namespaced, garbage) and
against this machine."""

import json
import os
import sys

import pytest
from conftest import need
from fixtures_memory import (
    CGROUP_PSI,
    HOST_AVAIL,
    HOST_SWAP,
    HOST_SWAP_USED,
    HOST_TOTAL,
    MOUNT_HYBRID,
    MOUNT_V2,
    V1_NONE,
    GiB,
    MiB,
    build,
    host_files,
    v1_cgroup,
    v1_files,
    v2_cgroup,
    v2_files,
    write,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from wizard.probes import memory
from wizard.system.sysroot import SysRoot

KEYS = {
    "platform",
    "limit_bytes",
    "limit_source",
    "used_bytes",
    "available_bytes",
    "peak_bytes",
    "swap_total_bytes",
    "swap_used_bytes",
    "host_total_bytes",
    "host_available_bytes",
    "cgroup",
    "oom_kills",
    "oom_events",
    "host_oom_kills",
    "pressure",
    "pids",
    "high_bytes",
    "high_path",
    "high_events",
    "oom_group",
    "oom_group_kills",
    "oom_log",
    "oom_log_elsewhere",
    "oom_log_status",
    "userspace_oom",
    "notes",
    "errors",
}
CGROUP_KEYS = {
    "version",
    "path",
    "limit_path",
    "limit_bytes",
    "usage_bytes",
    "peak_bytes",
    "failcnt",
    "swap_limit_bytes",
    "namespace",
    "host_view",
}
INT_KEYS = KEYS - {"platform", "limit_source", "cgroup", "pressure", "pids", "oom_log"}
INT_KEYS -= {"oom_log_status", "errors", "notes", "oom_log_elsewhere", "high_path", "oom_group"}
INT_KEYS -= {"userspace_oom"}


def check_shape(out):
    """The documented shape, with the documented types."""
    assert set(out) == KEYS
    json.dumps(out)
    assert isinstance(out["platform"], str)
    assert isinstance(out["limit_source"], str) and "\n" not in out["limit_source"]
    for k in INT_KEYS:
        assert out[k] is None or (type(out[k]) is int and out[k] >= 0), (k, out[k])
    cg = out["cgroup"]
    if cg is not None:
        assert set(cg) == CGROUP_KEYS
        assert cg["version"] in (1, 2)
        assert isinstance(cg["path"], str) and isinstance(cg["limit_path"], str)
        assert cg["namespace"] in (None, "initial", "own")
        assert cg["host_view"] in (None, True, False)
        for k in CGROUP_KEYS - {"version", "path", "limit_path", "namespace", "host_view"}:
            assert cg[k] is None or (type(cg[k]) is int and cg[k] >= 0), (k, cg[k])
    if out["pressure"] is not None:
        assert set(out["pressure"]) == {"some_avg10", "some_avg60", "full_avg10", "full_avg60"}
        for v in out["pressure"].values():
            assert v is None or 0.0 <= v <= 100.0
    if out["pids"] is not None:
        assert set(out["pids"]) == {"max", "current", "events_max", "path"}
    assert isinstance(out["oom_log"], list)
    assert out["oom_log_status"] in ("ok", "empty") or out["oom_log_status"].startswith(
        ("unreadable: ", "cut: ")
    )
    assert out["oom_group"] in (None, True, False)
    assert isinstance(out["oom_log_elsewhere"], list)
    for n in out["notes"]:
        assert isinstance(n, str) and n and "\n" not in n
    for e in out["errors"]:
        assert isinstance(e, str) and e and "\n" not in e and "Traceback" not in e
    assert len(out["errors"]) == len(set(out["errors"]))


def run(tmp_path, files):
    out = memory.probe(build(tmp_path, files))
    check_shape(out)
    return out


# -- cgroup v2 -------------------------------------------------------------------------


def test_v2_parent_limit_smaller_wins(tmp_path):
    files = v2_files(
        "/user.slice/user-1000.slice/app.scope",
        {
            "/": {"memory.pressure": "some avg10=99.00 avg60=99.00 avg300=0 total=1\n"},
            "/user.slice": v2_cgroup(max="max", current=5 * GiB),
            "/user.slice/user-1000.slice": v2_cgroup(
                max=1 * GiB,
                current=900 * MiB,
                peak=1000 * MiB,
                events="low 0\nhigh 0\nmax 17\noom 5\noom_kill 3\noom_group_kill 0\n",
                stat="anon 800000000\nfile 143718400\ninactive_file 100000000\n",
                more={"memory.swap.max": f"{256 * MiB}\n", "memory.swap.current": "4096\n"},
            ),
            "/user.slice/user-1000.slice/app.scope": v2_cgroup(
                max=2 * GiB,
                current=600 * MiB,
                peak=700 * MiB,
                more={"memory.pressure": CGROUP_PSI, "pids.current": "12\n"},
            ),
        },
    )
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_bytes"] == 1 * GiB
    assert out["limit_source"] == "cgroup v2 /user.slice/user-1000.slice"
    cg = out["cgroup"]
    assert cg == {
        "version": 2,
        "path": "/user.slice/user-1000.slice/app.scope",
        "limit_path": "/user.slice/user-1000.slice",
        "limit_bytes": 1 * GiB,
        "usage_bytes": 900 * MiB,
        "peak_bytes": 1000 * MiB,
        "failcnt": 17,
        "swap_limit_bytes": 256 * MiB,
        "namespace": None,
        "host_view": None,
    }
    assert out["used_bytes"] == 900 * MiB - 100000000  # the working set: inactive cache is not used
    assert out["available_bytes"] == 1 * GiB - out["used_bytes"]
    assert out["peak_bytes"] == 1000 * MiB
    assert out["oom_kills"] == 3 and out["oom_events"] == 5
    assert out["host_oom_kills"] == 4
    assert out["host_total_bytes"] == HOST_TOTAL and out["host_available_bytes"] == HOST_AVAIL
    assert out["swap_total_bytes"] == 256 * MiB  # the cgroup's swap limit caps the host's swap
    assert out["swap_used_bytes"] == 4096
    # the own cgroup's pressure, not the host's nor the root cgroup's
    assert out["pressure"] == {
        "some_avg10": 11.0,
        "some_avg60": 12.0,
        "full_avg10": 21.0,
        "full_avg60": 22.0,
    }
    assert out["pids"] == {
        "max": None,
        "current": 12,
        "events_max": None,
        "path": "/user.slice/user-1000.slice/app.scope",
    }
    assert out["oom_log"] == [] and out["oom_log_status"].startswith("unreadable: /dev/kmsg")


def test_v2_child_limit_smaller_wins(tmp_path):
    files = v2_files(
        "/a/b",
        {
            "/a": v2_cgroup(max=4 * GiB, current=3 * GiB, more={"pids.max": "1000\n"}),
            "/a/b": v2_cgroup(
                max=512 * MiB,
                current=500 * MiB,
                events="max 2\noom 1\noom_kill 1\n",
                more={
                    "pids.max": "50\n",
                    "pids.current": "50\n",
                    "pids.events": "max 7\n",
                    "memory.swap.max": "max\n",
                },
            ),
        },
    )
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_bytes"] == 512 * MiB
    assert out["limit_source"] == "cgroup v2 /a/b"
    assert out["used_bytes"] == 500 * MiB
    assert out["available_bytes"] == 12 * MiB
    assert out["oom_kills"] == 1 and out["oom_events"] == 1
    assert out["pids"] == {"max": 50, "current": 50, "events_max": 7, "path": "/a/b"}
    # no swap limit in the cgroup: the host's swap
    assert out["swap_total_bytes"] == HOST_SWAP
    assert out["cgroup"]["swap_limit_bytes"] is None
    # no pressure file in the cgroup: the host's
    assert out["pressure"]["some_avg10"] == 1.5 and out["pressure"]["full_avg60"] == 0.75


def test_v2_limit_above_host_total_means_host(tmp_path):
    files = v2_files("/big", {"/big": v2_cgroup(max=64 * GiB, current=1 * GiB)})
    out = run(tmp_path, files)
    assert out["limit_source"] == "host"
    assert out["limit_bytes"] == HOST_TOTAL
    assert out["used_bytes"] == HOST_TOTAL - HOST_AVAIL
    assert out["cgroup"]["limit_bytes"] == 64 * GiB
    assert out["peak_bytes"] is None


def test_v2_available_is_capped_by_host(tmp_path):
    files = v2_files("/x", {"/x": v2_cgroup(max=7 * GiB, current=10 * MiB)})
    out = run(tmp_path, files)
    assert out["limit_source"] == "cgroup v2 /x"
    assert out["available_bytes"] == HOST_AVAIL  # less than 7 GiB - 10 MiB


# -- cgroup v1 (and hybrid) ------------------------------------------------------------


def test_v1_limit_and_oom_control(tmp_path):
    files = v1_files(
        "/process_api/abc",
        {
            "/": v1_cgroup(usage=3 * GiB),
            "/process_api": v1_cgroup(oom_kill=100),
            "/process_api/abc": v1_cgroup(
                limit=1000 * MiB,
                usage=990 * MiB,
                peak=1000 * MiB,
                failcnt=42,
                oom_kill=2,
                under_oom=0,
                memsw_limit=1500 * MiB,
                memsw_usage=1000 * MiB,
                stat="cache 0\nhierarchical_memory_limit 1048576000\ntotal_inactive_file 0\n",
            ),
        },
    )
    files["/dev/kmsg"] = (
        "6,10,1000000,-;hello\n"
        "3,11,2500000,-;Memory cgroup out of memory: Killed process 2230 (python3) "
        "total-vm:323784kB, anon-rss:101888kB, file-rss:0kB, shmem-rss:0kB, UID:0\n"
    )
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_bytes"] == 1000 * MiB
    assert out["limit_source"] == "cgroup v1 /process_api/abc"
    assert out["oom_log_status"] == "ok"
    # The log does not name the victim's cgroup: not provably ours, shown as elsewhere.
    assert out["oom_log"] == []
    assert out["oom_log_elsewhere"] == [
        {
            "time": 1700000002.5,  # btime + 2.5 s
            "pid": 2230,
            "name": "python3",
            "rss_bytes": 101888 * 1024,
            "total_vm_bytes": 323784 * 1024,
            "cgroup_oom": True,
            "memcg": None,
            "limit_memcg": None,
            "group_kill": False,
        }
    ]
    assert out["cgroup"] == {
        "version": 1,
        "path": "/process_api/abc",
        "limit_path": "/process_api/abc",
        "limit_bytes": 1000 * MiB,
        "usage_bytes": 990 * MiB,
        "peak_bytes": 1000 * MiB,
        "failcnt": 42,
        "swap_limit_bytes": 500 * MiB,
        "namespace": None,
        "host_view": None,
    }
    assert out["used_bytes"] == 990 * MiB and out["available_bytes"] == 10 * MiB
    # kills in the parent (not ours, not over our limit) are not counted
    assert out["oom_kills"] == 2 and out["oom_events"] == 0
    assert out["swap_total_bytes"] == 500 * MiB and out["swap_used_bytes"] == 10 * MiB
    assert out["pids"] is None  # the pids cgroup is the root one: no pids files


def test_v1_parent_limit_counts_kills_on_the_way(tmp_path):
    files = v1_files(
        "/project/kernels",
        {
            "/project": v1_cgroup(
                limit=2 * GiB, usage=2 * GiB - 4096, peak=2 * GiB, oom_kill=1, under_oom=1
            ),
            "/project/kernels": v1_cgroup(usage=1 * GiB, oom_kill=5),
        },
        pids_own="/project/kernels",
        pids={"/project": {"pids.max": "500\n"}, "/project/kernels": {"pids.current": "9\n"}},
    )
    write(tmp_path, "/sys/fs/cgroup/pids/project/pids.current", "30\n")
    write(tmp_path, "/sys/fs/cgroup/pids/project/pids.events", "max 3\n")
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_source"] == "cgroup v1 /project"
    assert out["cgroup"]["path"] == "/project/kernels"
    assert out["cgroup"]["usage_bytes"] == 2 * GiB - 4096
    assert out["oom_kills"] == 6  # v1 counts each kill in the victim's own cgroup
    assert out["oom_events"] == 1  # under_oom of the limiting cgroup
    assert out["swap_total_bytes"] == HOST_SWAP  # no memsw files: the host's swap
    assert out["swap_used_bytes"] == HOST_SWAP_USED
    assert out["pids"] == {"max": 500, "current": 30, "events_max": 3, "path": "/project"}


def test_hybrid_v1_memory_with_empty_unified(tmp_path):
    files = v1_files(
        "/x",
        {"/x": v1_cgroup(limit=100 * MiB, usage=50 * MiB)},
        unified={"memory.pressure": CGROUP_PSI},
    )
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["cgroup"]["version"] == 1
    assert out["limit_bytes"] == 100 * MiB
    assert out["pressure"]["some_avg10"] == 11.0  # the unified hierarchy's, own cgroup "/"


def test_v1_inherited_limit_from_hidden_ancestor(tmp_path):
    # A container: its cgroup is the mount's root, the parent's 300 MiB limit shows only
    # in memory.stat hierarchical_memory_limit.
    mountinfo = MOUNT_HYBRID.replace(
        "35 31 0:32 / /sys/fs/cgroup/memory", "35 31 0:32 /docker/abc /sys/fs/cgroup/memory"
    )
    stat = f"total_inactive_file {10 * MiB}\nhierarchical_memory_limit {300 * MiB}\n"
    files = v1_files("/docker/abc", {}, mountinfo=mountinfo)
    files.update(
        {
            "/sys/fs/cgroup/memory/" + k: v
            for k, v in v1_cgroup(usage=200 * MiB, oom_kill=1, stat=stat).items()
        }
    )
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_bytes"] == 300 * MiB
    assert out["limit_source"] == "cgroup v1 /docker/abc (inherited)"
    assert out["used_bytes"] == 190 * MiB
    assert out["oom_kills"] == 1


def test_namespaced_mount_root_v1(tmp_path):
    # Docker without a cgroup namespace: /proc/self/cgroup shows the host path, and
    # mountinfo shows the same path as the root of the mount.
    mountinfo = MOUNT_HYBRID.replace(
        "35 31 0:32 / /sys/fs/cgroup/memory", "35 31 0:32 /docker/abc /sys/fs/cgroup/memory"
    )
    files = v1_files("/docker/abc/sub", {}, mountinfo=mountinfo)
    for k, v in v1_cgroup(limit=64 * MiB, usage=1 * MiB).items():
        files["/sys/fs/cgroup/memory/" + k] = v
    for k, v in v1_cgroup(usage=1 * MiB).items():
        files["/sys/fs/cgroup/memory/sub/" + k] = v
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_source"] == "cgroup v1 /docker/abc"
    assert out["cgroup"]["path"] == "/docker/abc/sub"


def test_namespaced_mount_root_v2_relative_path(tmp_path):
    # A cgroup namespace: the mount's root is a host path, /proc/self/cgroup is relative.
    mountinfo = "30 23 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    files = v2_files(
        "/ctr", {"/": v2_cgroup(max=256 * MiB), "/ctr": v2_cgroup(current=1)}, mountinfo
    )
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_bytes"] == 256 * MiB
    assert out["limit_source"] == "cgroup v2 /"
    assert out["cgroup"]["path"] == "/ctr"


def test_missing_cgroup_dir_falls_back_to_mount_root(tmp_path):
    files = v2_files("/gone/away", {"/": v2_cgroup(max=300 * MiB, current=5 * MiB)})
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["limit_bytes"] == 300 * MiB
    assert out["used_bytes"] == 5 * MiB


def test_no_mountinfo_uses_usual_places(tmp_path):
    files = v1_files("/p", {"/p": v1_cgroup(limit=123 * MiB, usage=1)})
    del files["/proc/self/mountinfo"]
    out = run(tmp_path, files)
    assert out["limit_bytes"] == 123 * MiB


def test_cgroup_not_mounted_is_said(tmp_path):
    files = host_files()
    files["/proc/self/cgroup"] = "4:memory:/somewhere\n0::/\n"
    files["/proc/self/mountinfo"] = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
    out = run(tmp_path, files)
    assert out["limit_source"] == "host"
    assert out["errors"] == ["cgroup /somewhere is not mounted here: its limit is unknown"]


def test_long_mountinfo(tmp_path):
    filler = "".join(f"{100 + i} 23 0:{i} / /mnt/m{i} rw - tmpfs tmpfs rw\n" for i in range(3000))
    files = v2_files("/a", {"/a": v2_cgroup(max=300 * MiB)}, filler + MOUNT_V2)
    assert len(files["/proc/self/mountinfo"]) > 100_000
    out = run(tmp_path, files)
    assert out["errors"] == [] and out["limit_bytes"] == 300 * MiB


def test_garbage_own_cgroup_file_is_said(tmp_path):
    files = _full_v2()
    files["/proc/self/cgroup"] = "what is this\n"
    out = run(tmp_path, files)
    assert out["errors"] == ["/proc/self/cgroup: unexpected content 'what is this'"]
    assert out["cgroup"] is None and out["limit_source"] == "host"


def test_garbage_pressure_is_one_line(tmp_path):
    files = host_files()
    files["/proc/pressure/memory"] = "some avg10=nan avg60=-1 avg300=x\nfull avg10=200\n"
    out = run(tmp_path, files)
    assert out["pressure"] is None
    assert out["errors"] == [
        "/proc/pressure/memory: unexpected content 'some avg10=nan avg60=-1 avg300=x'"
    ]


def test_path_escape_is_refused(tmp_path):
    files = v2_files("/../../../../etc", {"/": v2_cgroup(max=300 * MiB)})
    out = run(tmp_path, files)
    assert out["cgroup"] is None and out["limit_source"] == "host"


def test_mountinfo_escapes(tmp_path):
    mountinfo = r"30 23 0:26 / /sys/fs/my\040cgroup rw - cgroup2 cgroup2 rw" + "\n"
    files = v2_files("/", {"/": v2_cgroup(max=300 * MiB)}, mountinfo, mount="/sys/fs/my cgroup")
    out = run(tmp_path, files)
    assert out["limit_bytes"] == 300 * MiB


# -- no cgroups ------------------------------------------------------------------------


def test_none_host_values(tmp_path):
    out = run(tmp_path, host_files())
    assert out["errors"] == []
    assert out["cgroup"] is None
    assert out["limit_source"] == "host"
    assert out["limit_bytes"] == HOST_TOTAL
    assert out["used_bytes"] == HOST_TOTAL - HOST_AVAIL
    assert out["available_bytes"] == HOST_AVAIL
    assert out["peak_bytes"] is None
    assert out["swap_total_bytes"] == HOST_SWAP and out["swap_used_bytes"] == HOST_SWAP_USED
    assert out["host_oom_kills"] == 4
    assert out["pressure"] == {
        "some_avg10": 1.5,
        "some_avg60": 2.25,
        "full_avg10": 0.5,
        "full_avg60": 0.75,
    }
    assert out["pids"] is None


def test_old_kernel_without_memavailable_or_psi(tmp_path):
    files = host_files(
        "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 90 kB\n"
        "SwapTotal: 0 kB\nSwapFree: 0 kB\n"
    )
    del files["/proc/pressure/memory"]
    out = run(tmp_path, files)
    assert out["errors"] == []
    assert out["host_available_bytes"] == 200 * 1024
    assert out["pressure"] is None


def test_empty_root_says_what_is_missing(tmp_path):
    out = run(tmp_path, {})
    assert out["limit_bytes"] is None and out["cgroup"] is None
    assert any(e.startswith("cannot read /proc/meminfo") for e in out["errors"])
    assert len(out["errors"]) == 2  # meminfo, vmstat; the rest is optional


# -- garbage ---------------------------------------------------------------------------


def _full_v2():
    return v2_files(
        "/a/b",
        {
            "/a": v2_cgroup(max=GiB, current=GiB // 2, peak=GiB),
            "/a/b": v2_cgroup(
                max="max",
                current=4096,
                more={
                    "memory.pressure": CGROUP_PSI,
                    "pids.max": "10\n",
                    "pids.current": "1\n",
                    "pids.events": "max 0\n",
                    "memory.swap.max": "0\n",
                    "memory.swap.current": "0\n",
                },
            ),
        },
    )


def _full_v1():
    files = v1_files(
        "/p/q",
        {
            "/p": v1_cgroup(limit=GiB, usage=1, memsw_limit=GiB, memsw_usage=1),
            "/p/q": v1_cgroup(usage=1, oom_kill=1, memsw_limit=V1_NONE, memsw_usage=1),
        },
        pids_own="/p",
        pids={"/p": {"pids.max": "10\n", "pids.current": "1\n", "pids.events": "max 0\n"}},
        unified={"memory.pressure": CGROUP_PSI},
    )
    files["/dev/kmsg"] = (
        "6,1,1000000,-;Memory cgroup out of memory: Killed process 5 (x) total-vm:8kB\n"
    )
    return files


GARBAGE = [
    b"",
    b"\x00\xff\xfe garbage \x80",
    b"-5\n",
    b"99999999999999999999999999999999\n",
    b"18446744073709551616\n",
    b"1e9\n",
    b"nan\n",
    b"max max max\n",
    b"some avg10=nan avg60=-1\nfull avg10=inf\n",
    b"0::/../..\n4:memory:\x00\n",
    b"oom_kill -3\nunder_oom x\nmax \xff\n",
    b"MemTotal: -1 kB\nMemAvailable: 99999999999999999999999 kB\n",
    b"\n\n\n:::\n",
    b"1 2 3 - - - - - -\n",
    b"\xd9\xa1\xd9\xa2\n",  # Arabic-Indic digits: int() would take them
]


class Mutable:
    """A full fixture tree built once; ``with tree.changed(path, content):`` swaps one file
    (``content`` None: a directory in its place) and puts it back afterwards."""

    def __init__(self, base, files):
        self.files = files
        self.base = base
        self.root = build(base, files)

    def changed(self, changes):
        import contextlib

        @contextlib.contextmanager
        def swap():
            saved = []
            try:
                for path, content in changes.items():
                    p = self.base / path.lstrip("/")
                    if p.is_dir():
                        continue  # already swapped for a directory in this round
                    saved.append((p, p.read_bytes()))
                    p.unlink()
                    if content is None:
                        p.mkdir()
                    else:
                        p.write_bytes(content)
                yield self.root
            finally:
                for p, data in saved:
                    if p.is_dir():
                        p.rmdir()
                    p.write_bytes(data)

        return swap()


_TREES = {}


def full_tree(factory, kind):
    if kind not in _TREES:
        files = _full_v1() if kind == "v1" else _full_v2()
        _TREES[kind] = Mutable(factory.mktemp("full-" + kind), files)
    return _TREES[kind]


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_garbage_in_each_file(tmp_path_factory, kind):
    tree = full_tree(tmp_path_factory, kind)
    for target in sorted(tree.files):
        for content in [*GARBAGE, None]:
            with tree.changed({target: content}) as root:
                check_shape(memory.probe(root))


def test_garbage_number_gives_one_error_and_none(tmp_path):
    files = _full_v2()
    files["/sys/fs/cgroup/a/memory.current"] = "12abc\n"
    out = run(tmp_path, files)
    assert out["errors"] == ["/sys/fs/cgroup/a/memory.current: unexpected content '12abc'"]
    assert out["limit_bytes"] == GiB and out["used_bytes"] is None
    assert out["available_bytes"] == HOST_AVAIL  # what is still known


def test_directory_instead_of_file(tmp_path):
    files = _full_v1()
    del files["/sys/fs/cgroup/memory/p/memory.limit_in_bytes"]
    (tmp_path / "sys/fs/cgroup/memory/p/memory.limit_in_bytes").mkdir(parents=True)
    out = run(tmp_path, files)
    assert out["errors"] == [
        "cannot read /sys/fs/cgroup/memory/p/memory.limit_in_bytes: Is a directory"
    ]
    assert out["limit_source"] == "host"


def test_permission_denied(tmp_path, monkeypatch):
    # Root reads any file whatever its mode: refuse one read the way the kernel would.
    root = build(tmp_path, _full_v2())
    real = SysRoot.read_bytes

    def read_bytes(self, p, limit=1 << 20):
        if p.endswith("/memory.max"):
            raise PermissionError(13, "Permission denied", self.path(p))
        return real(self, p, limit)

    monkeypatch.setattr(SysRoot, "read_bytes", read_bytes)
    out = memory.probe(root)
    check_shape(out)
    assert "cannot read /sys/fs/cgroup/a/memory.max: Permission denied" in out["errors"]
    assert out["limit_source"] == "host"


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzz_random_bytes(tmp_path_factory, data):
    tree = full_tree(tmp_path_factory, data.draw(st.sampled_from(["v1", "v2"])))
    targets = data.draw(st.lists(st.sampled_from(sorted(tree.files)), min_size=1, max_size=4))
    changes = {t: data.draw(st.one_of(st.binary(max_size=300), st.none())) for t in targets}
    with tree.changed(changes) as root:
        check_shape(memory.probe(root))


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["v1", "v2"]),
    cgroup=st.text(st.characters(codec="utf-8"), max_size=80),
    mountinfo=st.text(st.characters(codec="utf-8"), max_size=200),
)
def test_fuzz_cgroup_and_mountinfo_text(tmp_path_factory, kind, cgroup, mountinfo):
    tree = full_tree(tmp_path_factory, kind)
    changes = {"/proc/self/cgroup": cgroup.encode(), "/proc/self/mountinfo": mountinfo.encode()}
    with tree.changed(changes) as root:
        check_shape(memory.probe(root))


# -- not Linux -------------------------------------------------------------------------


def test_not_linux_uses_psutil(monkeypatch):
    try:
        import psutil
    except ImportError:
        need(False, "psutil is not installed")
    monkeypatch.setattr(sys, "platform", "darwin")
    out = memory.probe(SysRoot("/"))
    check_shape(out)
    assert out["platform"] == "darwin" and out["cgroup"] is None
    assert out["limit_source"] == "host"
    assert out["limit_bytes"] == psutil.virtual_memory().total
    assert out["oom_log_status"].startswith("unreadable: ")


def test_not_linux_without_psutil(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    out = memory.probe(SysRoot("/"))
    check_shape(out)
    assert out["errors"] == ["psutil is not installed: pip install psutil"]
    assert out["limit_bytes"] is None and out["used_bytes"] is None


# -- this machine ----------------------------------------------------------------------


def _independent_limit():
    """The limit in force here, read without the probe's code: (bytes, source)."""
    total = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
    own_v1 = own_v2 = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrls.split(","):
                own_v1 = path
            if hid == "0":
                own_v2 = path
    best = None
    if own_v1 is not None:
        base, name, none = "/sys/fs/cgroup/memory", "memory.limit_in_bytes", V1_NONE
        own = own_v1
    else:
        base, name, none = "/sys/fs/cgroup", "memory.max", "max"
        own = own_v2 or "/"
    parts = [p for p in own.split("/") if p]
    for k in range(len(parts), -1, -1):
        f = os.path.join(base, *parts[:k], name)
        if os.path.exists(f):
            with open(f) as fh:
                v = fh.read().strip()
            n = None if v in ("max", str(none)) else int(v)
            if n is not None and n < (1 << 62) and (best is None or n < best[0]):
                best = (n, "/" + "/".join(parts[:k]))
    if best is not None and best[0] < total:
        return best[0], best[1], own
    return total, "host", own


def test_real_system():
    need(sys.platform.startswith("linux"), "needs Linux /proc")
    limit, where, own = _independent_limit()
    out = memory.probe(SysRoot("/"))
    check_shape(out)
    assert out["errors"] == []
    assert out["limit_bytes"] == limit
    if where == "host":
        assert out["limit_source"] == "host"
    else:
        assert out["limit_source"].endswith(" " + where)
    if out["cgroup"] is not None:
        assert out["cgroup"]["path"] == own
    assert out["host_total_bytes"] > 0
    assert 0 <= out["used_bytes"] <= out["limit_bytes"]


def test_real_system_probe_repeats_the_same_facts():
    """Probing again gives the same limit and cgroup (its speed: benchmarks/bench_probes.py)."""
    need(sys.platform.startswith("linux"), "needs Linux /proc")
    root = SysRoot("/")
    first = memory.probe(root, oom_log=False)
    for _ in range(5):
        again = memory.probe(root, oom_log=False)
        assert again["limit_bytes"] == first["limit_bytes"]
        assert again["limit_source"] == first["limit_source"]
        assert again["errors"] == first["errors"]
