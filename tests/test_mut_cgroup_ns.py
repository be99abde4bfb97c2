"""wizard.system.cgroups in a cgroup namespace: mount roots above ours (``/../..``), the
search for our cgroup by pid, the namespace's inode, and what is said when it fails."""

import os

from fixtures_memory import build

from wizard.system import cgroups
from wizard.system.sysroot import SysRoot

MP = "/sys/fs/cgroup"


def procs(tmp_path, listing):
    """A cgroup tree: ``{cgroup path: cgroup.procs content}`` under MP."""
    return build(tmp_path, {f"{MP}{cg.rstrip('/')}/cgroup.procs": text for cg, text in listing})


# -- climb -----------------------------------------------------------------------


def test_climb_of_odd_roots():
    assert cgroups.climb("/..") == (1, ())
    assert cgroups.climb("/./../a/./b") == (1, ("a", "b"))
    assert cgroups.climb("/a/../b") == (0, None)
    assert cgroups.climb("/../a/..") == (1, None)
    assert cgroups.climb("") == (0, ())
    assert cgroups.climb(None) == (0, ())
    assert cgroups.climb("..//..") == (2, ())


# -- find_member -----------------------------------------------------------------


def test_find_member_two_levels_down(tmp_path):
    root = procs(
        tmp_path,
        [("/", "1\n"), ("/pod1", ""), ("/pod1/ctr", "7\n"), ("/pod4", ""), ("/pod4/ctr", "42\n")],
    )
    assert cgroups.find_member(root, MP, 2, (), 42) == (("pod4", "ctr"), None)
    assert cgroups.find_member(root, MP, 2, (), "7") == (("pod1", "ctr"), None)
    assert cgroups.find_member(root, MP, 1, (), 42) == (None, "no cgroup there lists this process")
    assert cgroups.find_member(root, MP, 0, (), 1) == ((), None)


def test_find_member_matches_whole_pids_only(tmp_path):
    root = procs(tmp_path, [("/a", "4242\n14\n"), ("/b", "424\n42\n")])
    assert cgroups.find_member(root, MP, 1, (), 42) == (("b",), None)
    assert cgroups.find_member(root, MP, 1, (), 4) == (None, "no cgroup there lists this process")


def test_find_member_takes_the_first_in_name_order(tmp_path):
    root = procs(tmp_path, [("/zz", "5\n"), ("/aa", "5\n"), ("/mm", "5\n")])
    assert cgroups.find_member(root, MP, 1, (), 5) == (("aa",), None)


def test_find_member_skips_directories_that_are_no_cgroups(tmp_path):
    root = procs(tmp_path, [("/x/ctr", "5\n"), ("/y", ""), ("/y/ctr", "5\n")])
    (tmp_path / "sys/fs/cgroup/file").write_text("")
    # /x has no cgroup.procs of its own: not a cgroup, not descended into
    assert cgroups.find_member(root, MP, 2, (), 5) == (("y", "ctr"), None)


def test_find_member_follows_our_path_below_each_candidate(tmp_path):
    root = procs(tmp_path, [("/a", ""), ("/b", ""), ("/b/job/me", "9\n"), ("/c/job/me", "9\n")])
    # /a has no job/me below it: its absence is no error, /b is next
    assert cgroups.find_member(root, MP, 1, ("job", "me"), 9) == (("b", "job", "me"), None)


class Vanishing(SysRoot):
    """A fixture tree where cgroup ``gone`` is removed after it was seen: listing it fails."""

    def __init__(self, base, gone):
        super().__init__(base)
        self.gone = gone

    def listdir(self, p):
        if p == self.gone:
            raise FileNotFoundError(2, "No such file or directory", p)
        return super().listdir(p)


def test_find_member_goes_on_past_a_cgroup_removed_while_searching(tmp_path):
    procs(tmp_path, [("/a", ""), ("/a/x", "5\n"), ("/b", ""), ("/b/y", "5\n")])
    root = Vanishing(str(tmp_path), f"{MP}/a")
    assert cgroups.find_member(root, MP, 2, (), 5) == (("b", "y"), None)
    assert cgroups.find_member(SysRoot(str(tmp_path)), MP, 2, (), 5) == (("a", "x"), None)


def test_find_member_without_the_mount(tmp_path):
    root = SysRoot(str(tmp_path))
    why = "no cgroup there lists this process"
    assert cgroups.find_member(root, MP, 2, (), 9) == (None, why)
    assert cgroups.find_member(root, MP, 0, (), 9) == (None, why)


def test_find_member_stops_after_its_budget(tmp_path):
    root = procs(tmp_path, [(f"/c{i}", "") for i in range(4)] + [("/c3/x", "8\n")])
    # 4 names below the mount, then 5 below them (each cgroup.procs, and x)
    assert cgroups.find_member(root, MP, 2, (), 8, budget=9) == (("c3", "x"), None)
    assert cgroups.find_member(root, MP, 2, (), 8, budget=8) == (
        None,
        "more than 8 cgroups to search",
    )
    assert cgroups.find_member(root, MP, 1, (), 8, budget=4) == (
        None,
        "no cgroup there lists this process",
    )
    assert cgroups.find_member(root, MP, 1, (), 8, budget=3) == (
        None,
        "more than 3 cgroups to search",
    )


class Crowded(SysRoot):
    """A fixture tree whose mount point also lists ``extra`` names that are no cgroups
    (thousands of files are slow to make on some file systems)."""

    def __init__(self, base, extra):
        super().__init__(base)
        self.extra = extra

    def listdir(self, p):
        names = super().listdir(p)
        return names + [f"f{i:04}" for i in range(self.extra)] if p == MP else names


def test_find_member_default_budget(tmp_path):
    procs(tmp_path, [("/a", ""), ("/a/me", "3\n")])
    # every name below the mount counts, cgroup or not: 1 + 4999, then 1 + 5000
    root = Crowded(str(tmp_path), 4999)
    assert cgroups.find_member(root, MP, 1, ("me",), 3) == (("a", "me"), None)
    root = Crowded(str(tmp_path), 5000)
    too_many = (None, "more than 5000 cgroups to search")
    assert cgroups.find_member(root, MP, 1, ("me",), 3) == too_many


def test_find_member_reads_cgroup_procs_up_to_4_mib(tmp_path):
    # 8 bytes a pid: exactly 4 MiB of pids, then one more
    pids = "".join(f"{i}\n" for i in range(1000000, 1000000 + (4 << 20) // 8))
    root = procs(tmp_path, [("/big", pids + "2000000\n")])
    assert cgroups.find_member(root, MP, 1, (), 1524287) == (("big",), None)
    assert cgroups.find_member(root, MP, 1, (), 2000000) == (
        None,
        "no cgroup there lists this process",
    )


# -- locate below a mount that starts above our namespace -------------------------


def ns_tree(tmp_path):
    return procs(
        tmp_path,
        [("/", "1\n"), ("/pod4", ""), ("/pod4/ctr", "4242\n"), ("/pod4/ctr/sub", "77\n")],
    )


def test_locate_finds_our_cgroup_by_pid(tmp_path):
    root = ns_tree(tmp_path)
    notes = {}
    assert cgroups.locate(root, [("/../..", MP)], "/", 4242, notes) == (
        [(f"{MP}/pod4/ctr", "/pod4/ctr"), (f"{MP}/pod4", "/pod4"), (MP, "/")],
        MP,
    )
    assert notes == {"found_by_search": MP}
    # a path below the namespace's root is followed from the found cgroup
    assert cgroups.locate(root, [("/../..", MP)], "/sub", 77) == (
        [
            (f"{MP}/pod4/ctr/sub", "/pod4/ctr/sub"),
            (f"{MP}/pod4/ctr", "/pod4/ctr"),
            (f"{MP}/pod4", "/pod4"),
            (MP, "/"),
        ],
        MP,
    )


def test_locate_one_level_up(tmp_path):
    root = ns_tree(tmp_path)
    assert cgroups.locate(root, [("/..", f"{MP}/pod4")], "/", 4242) == (
        [(f"{MP}/pod4/ctr", "/ctr"), (f"{MP}/pod4", "/")],
        f"{MP}/pod4",
    )


def test_locate_not_found_by_pid_says_why_and_gives_nothing(tmp_path):
    root = ns_tree(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    notes = {}
    mounts = [("/../..", MP), ("/", "/elsewhere")]
    # /elsewhere has no /nope: its mount point would stand in, but not for a lost cgroup
    assert cgroups.locate(root, mounts, "/nope", 999, notes) is None
    assert notes == {
        "unresolved": f"the cgroup mount at {MP} starts above this cgroup namespace "
        "(root /../..) and this process's cgroup was not found in it: "
        "no cgroup there lists this process"
    }


def test_locate_not_found_then_another_mount_has_the_path(tmp_path):
    root = ns_tree(tmp_path)
    (tmp_path / "other/x").mkdir(parents=True)
    notes = {}
    mounts = [("/../..", MP), ("/", "/other")]
    assert cgroups.locate(root, mounts, "/x", 999, notes) == (
        [("/other/x", "/x"), ("/other", "/")],
        "/other",
    )
    assert "unresolved" in notes
    assert "found_by_search" not in notes


def test_locate_skips_climbing_mounts_it_cannot_search(tmp_path):
    root = ns_tree(tmp_path)
    (tmp_path / "other").mkdir()
    notes = {}
    # no pid to look for, or a root beside ours (/../../x): not searched, not said
    assert cgroups.locate(root, [("/../..", MP), ("/", "/other")], "/", None, notes) == (
        [("/other", "/")],
        "/other",
    )
    assert cgroups.locate(root, [("/../../x", MP), ("/", "/other")], "/", 4242, notes) == (
        [("/other", "/")],
        "/other",
    )
    assert cgroups.locate(root, [("/../..", MP)], "/", None, notes) is None
    assert notes == {}


def test_locate_without_notes_given(tmp_path):
    root = ns_tree(tmp_path)
    assert cgroups.locate(root, [("/../..", MP)], "/", 999) is None
    assert cgroups.locate(root, [("/../..", MP)], "/", 4242)[1] == MP


# -- View in a namespace ---------------------------------------------------------


def test_self_pid_from_the_fixtures_stat(tmp_path):
    assert cgroups.View(build(tmp_path, {"/proc/self/stat": "4242 (py) S 1\n"})).self_pid() == 4242
    assert cgroups.View(SysRoot(str(tmp_path / "none"))).self_pid() is None
    assert cgroups.View(build(tmp_path / "g", {"/proc/self/stat": "x (py)\n"})).self_pid() is None
    assert cgroups.View(build(tmp_path / "e", {"/proc/self/stat": "\n"})).self_pid() is None


def test_self_pid_of_the_real_system():
    assert cgroups.View(SysRoot("/")).self_pid() == os.getpid()


def link(tmp_path, target):
    d = tmp_path / "proc/self/ns"
    d.mkdir(parents=True)
    os.symlink(target, d / "cgroup")
    return SysRoot(str(tmp_path))


def test_namespace_from_the_link(tmp_path):
    assert cgroups.View(link(tmp_path / "a", "cgroup:[4026531835]")).namespace() == "initial"
    assert cgroups.View(link(tmp_path / "b", "cgroup:[4026532000]")).namespace() == "own"
    assert cgroups.View(link(tmp_path / "c", "net:[4026531835]")).namespace() is None
    assert cgroups.View(link(tmp_path / "d", "cgroup:4026531835")).namespace() is None


def test_namespace_from_a_file_in_a_fixture(tmp_path):
    def ns(name, text):
        return cgroups.View(build(tmp_path / name, {"/proc/self/ns/cgroup": text})).namespace()

    assert ns("a", " cgroup:[4026531835]\n") == "initial"
    assert ns("b", "cgroup:[4026532000]\n") == "own"
    assert ns("c", "mnt:[4026531835]\n") is None
    assert ns("d", "") is None
    assert cgroups.View(SysRoot(str(tmp_path / "none"))).namespace() is None
    assert cgroups.INIT_CGROUP_NS == "cgroup:[4026531835]"


def ns_view(tmp_path, pid="4242"):
    files = {
        "/proc/self/mountinfo": f"30 23 0:26 /../.. {MP} rw - cgroup2 cgroup2 rw\n",
        "/proc/self/stat": f"{pid} (python) S 1\n",
        f"{MP}/cgroup.procs": "1\n",
        f"{MP}/pod4/cgroup.procs": "",
        f"{MP}/pod4/ctr/cgroup.procs": "4242\n",
    }
    return cgroups.View(build(tmp_path, files))


def test_view_levels_found_by_our_pid(tmp_path):
    view = ns_view(tmp_path)
    assert view.levels("cgroup2", "/") == [
        (f"{MP}/pod4/ctr", "/pod4/ctr"),
        (f"{MP}/pod4", "/pod4"),
        (MP, "/"),
    ]
    assert view.notes == {"cgroup2": {"found_by_search": MP}}
    assert view.errors == []


def test_view_levels_of_another_pid_leave_our_notes_alone(tmp_path):
    view = ns_view(tmp_path, pid="1")
    assert view.levels("cgroup2", "/", pid=4242)[0] == (f"{MP}/pod4/ctr", "/pod4/ctr")
    assert view.levels("cgroup2", "/", pid=555) is None
    assert view.notes == {}
    assert view.errors == []


def test_view_levels_unresolved_is_one_error(tmp_path):
    view = ns_view(tmp_path, pid="555")
    assert view.levels("cgroup2", "/") is None
    why = (
        f"the cgroup mount at {MP} starts above this cgroup namespace (root /../..) and "
        "this process's cgroup was not found in it: no cgroup there lists this process"
    )
    assert view.notes == {"cgroup2": {"unresolved": why}}
    assert view.levels("cgroup2", "/") is None
    assert view.errors == [why + ": its limit is unknown"]


def test_memory_levels_in_a_namespace(tmp_path):
    view = ns_view(tmp_path)
    assert view.memory_levels("/", {}) == (
        2,
        [(f"{MP}/pod4/ctr", "/pod4/ctr"), (f"{MP}/pod4", "/pod4"), (MP, "/")],
    )
    assert view.memory_levels("/", {}, pid=555) == (None, None)
    assert view.pids_levels("/", {})[0] == (f"{MP}/pod4/ctr", "/pod4/ctr")
    assert view.pids_levels("/", {}, pid=555) is None


def test_memory_and_pids_levels_of_another_pid_on_v1(tmp_path):
    v1 = "/sys/fs/cgroup"
    files = {
        "/proc/self/mountinfo": (
            f"35 31 0:32 /.. {v1}/memory rw - cgroup cgroup rw,memory\n"
            f"39 31 0:36 /.. {v1}/pids rw - cgroup cgroup rw,pids\n"
        ),
        "/proc/self/stat": "1 (init) S 0\n",
        f"{v1}/memory/job/cgroup.procs": "4242\n",
        f"{v1}/pids/job/cgroup.procs": "4242\n",
    }
    view = cgroups.View(build(tmp_path, files))
    own = {"memory": "/", "pids": "/"}
    assert view.memory_levels(None, own, pid=4242) == (
        1,
        [(f"{v1}/memory/job", "/job"), (f"{v1}/memory", "/")],
    )
    assert view.pids_levels(None, own, pid=4242) == [
        (f"{v1}/pids/job", "/job"),
        (f"{v1}/pids", "/"),
    ]
    # this process (pid 1) is listed nowhere: its own cgroup is unknown
    assert view.memory_levels(None, own) == (None, None)
    assert view.pids_levels(None, own) is None
