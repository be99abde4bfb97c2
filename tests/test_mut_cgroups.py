"""wizard.system.cgroups on fixture trees: exact values, paths and error lines."""

import errno

import pytest
from fixtures_memory import MOUNT_HYBRID, MOUNT_V2, V1_NONE, build

from wizard.system import cgroup_files, cgroups
from wizard.system.sysroot import SysRoot


class Refusing:
    """A root whose every read fails with one errno (what no fixture file can do)."""

    real = False

    def __init__(self, err, why=None):
        self.err, self.why = err, why

    def read_text(self, path, limit):
        raise OSError(self.err, self.why)


# -- add_error, garbage --------------------------------------------------------


def test_add_error_makes_one_printable_line_once():
    errors = []
    cgroups.add_error(errors, "bad\x00file\n\tthere  now ")
    cgroups.add_error(errors, "bad file there now")
    cgroups.add_error(errors, "x" * 400)
    assert errors == ["bad file there now", "x" * 300]


def test_garbage_names_the_file_and_the_start_of_its_content():
    errors = []
    cgroups.garbage(errors, "/sys/fs/cgroup/memory.max", "y" * 50)
    assert errors == ["/sys/fs/cgroup/memory.max: unexpected content '" + "y" * 40 + "'"]


# -- read ----------------------------------------------------------------------


def test_read_gives_the_text_up_to_the_limit(tmp_path):
    root = build(tmp_path, {"/proc/x": "abcdefgh"})
    errors = []
    assert cgroups.read(root, "/proc/x", errors) == "abcdefgh"
    assert cgroups.read(root, "/proc/x", errors, limit=3) == "abc"
    assert errors == []


def test_read_of_a_missing_file_is_silent_unless_required(tmp_path):
    root = SysRoot(str(tmp_path))
    errors = []
    assert cgroups.read(root, "/sys/fs/cgroup/memory.peak", errors) is None
    assert errors == []
    assert cgroups.read(root, "/sys/fs/cgroup/memory.max", errors, required=True) is None
    assert errors == ["cannot read /sys/fs/cgroup/memory.max: No such file or directory"]


def test_read_of_a_turned_off_file_is_silent_unless_required():
    errors = []
    assert cgroups.read(Refusing(errno.EOPNOTSUPP), "/p/memory.pressure", errors) is None
    assert errors == []
    assert cgroups.read(Refusing(errno.EOPNOTSUPP), "/p/memory.pressure", errors, True) is None
    assert errors == ["cannot read /p/memory.pressure: OSError"]


def test_read_errors_say_why(tmp_path):
    root = build(tmp_path, {"/sys/fs/cgroup/memory.max": "max\n", "/sys/d/f": ""})
    errors = []
    assert cgroups.read(root, "/sys/fs/cgroup/memory.max/x", errors) is None
    assert cgroups.read(root, "/sys/d", errors) is None
    assert cgroups.read(root, "/sys/a\x00b", errors) is None
    assert cgroups.read(Refusing(errno.EACCES, "Permission denied"), "/sys/e", errors) is None
    assert errors == [
        "cannot read /sys/fs/cgroup/memory.max/x: a parent is not a directory",
        "cannot read /sys/d: Is a directory",
        "cannot read '/sys/a\\x00b': invalid path",
        "cannot read /sys/e: Permission denied",
    ]


def test_read_caps_what_it_reads(tmp_path):
    root = build(tmp_path, {"/proc/big": "z" * (cgroups.READ_MAX + 10)})
    assert len(cgroups.read(root, "/proc/big", [])) == 64 * 1024


# -- count, keyed, field -----------------------------------------------------


def test_count_reads_one_number():
    errors = []
    assert cgroups.count(None, "/f", errors) is None
    assert cgroups.count(" 123\n", "/f", errors) == 123
    assert cgroups.count("0\n", "/f", errors) == 0
    assert cgroups.count(str((1 << 64) - 1), "/f", errors) == (1 << 64) - 1
    assert cgroups.count(str(1 << 63), "/f", errors, limit=True) is None  # above UNLIMITED
    assert cgroups.count("0" * 20, "/f", errors) == 0
    assert errors == []


def test_count_of_a_limit():
    errors = []
    assert cgroups.count("max\n", "/m", errors, limit=True) is None
    assert cgroups.count(f"{V1_NONE}\n", "/m", errors, limit=True) is None
    assert cgroups.count(str(1 << 62), "/m", errors, limit=True) is None
    assert cgroups.count(str((1 << 62) - 1), "/m", errors, limit=True) == (1 << 62) - 1
    assert cgroups.count(str(1 << 62), "/m", errors) == 1 << 62
    assert errors == []


@pytest.mark.parametrize(
    "text, shown",
    [
        ("max", "'max'"),
        ("-1", "'-1'"),
        ("12 kB", "'12 kB'"),
        ("\u0663", "'\u0663'"),  # an Arabic-Indic digit: isdigit, not ASCII
        ("0" * 21, "'" + "0" * 21 + "'"),
        (str(1 << 64), f"'{1 << 64}'"),
        ("", "''"),
    ],
)
def test_count_of_garbage_is_none_and_one_error(text, shown):
    errors = []
    assert cgroups.count(text + "\n", "/sys/f", errors) is None
    assert errors == [f"/sys/f: unexpected content {shown}"]


def test_keyed_takes_the_first_two_words_and_the_last_value():
    text = "anon 100\nfile 200 extra\nlonely\n\nanon 300\n"
    assert cgroups.keyed(text) == {"anon": "300", "file": "200"}
    assert cgroups.keyed(None) == {}
    assert cgroups.keyed("") == {}


def test_field_of_a_keyed_file():
    errors = []
    fields = {"oom_kill": "3", "low": "x1", "high": str(1 << 64), "wide": "0" * 21}
    assert cgroups.field(fields, "oom_kill", "/e", errors) == 3
    assert cgroups.field(fields, "max", "/e", errors) is None
    assert errors == []
    assert cgroups.field(fields, "low", "/e", errors) is None
    assert cgroups.field(fields, "high", "/e", errors) is None
    assert cgroups.field(fields, "wide", "/e", errors) is None
    assert cgroups.field({"n": "\u0663"}, "n", "/e", errors) is None
    assert cgroups.field({"n": str((1 << 64) - 1)}, "n", "/e", errors) == (1 << 64) - 1
    assert errors == [
        "/e low: unexpected content 'x1'",
        f"/e high: unexpected content '{1 << 64}'",
        "/e wide: unexpected content '" + "0" * 21 + "'",
        "/e n: unexpected content '\u0663'",
    ]


# -- paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, parts",
    [
        ("/", ()),
        ("/a//b/./c/", ("a", "b", "c")),
        ("/user.slice", ("user.slice",)),
        ("a/b", None),
        ("", None),
        ("/a/../b", None),
        ("/a\x00b", None),
        ("/..", None),
    ],
)
def test_clean_path(p, parts):
    assert cgroups.clean_path(p) == parts


def test_is_inside_without_paths():
    assert cgroups.is_inside(None, "/") is False
    assert cgroups.is_inside("/a", None) is False
    assert cgroups.is_inside("/a", "/") is True
    assert cgroups.is_inside("/a/../b", "/") is False


def test_join():
    assert cgroups.join("/sys/fs/cgroup/", ("a", "b")) == "/sys/fs/cgroup/a/b"
    assert cgroups.join("/sys/fs/cgroup", ()) == "/sys/fs/cgroup"
    assert cgroups.join("", ()) == ""
    assert cgroups.join("", ("x",)) == "/x"
    assert cgroups.join("/mnt/X/", ("a",)) == "/mnt/X/a"


def test_parse_membership_v2_and_v1():
    text = (
        "12:pids:/user.slice/u.service\n"
        "5:cpu,cpuacct:/cpu/path\n"
        "4:memory:/mem/path\n"
        "3:memory:/second\n"
        "1:name=systemd:/sd:with:colons\n"
        "0::/v2/path\n"
        "2::/not/v2\n"
        "garbage\n"
    )
    v2, v1 = cgroups.parse_membership(text)
    assert v2 == "/v2/path"
    assert v1 == {
        "pids": "/user.slice/u.service",
        "cpu": "/cpu/path",
        "cpuacct": "/cpu/path",
        "memory": "/mem/path",
        "name=systemd": "/sd:with:colons",
    }
    assert cgroups.parse_membership(None) == (None, {})
    assert cgroups.parse_membership("0::/\n") == ("/", {})
    assert cgroups.parse_membership("0::/my job/x\n") == ("/my job/x", {})
    assert cgroups.parse_membership("junk\n0::/a\n") == ("/a", {})


@pytest.mark.parametrize(
    "s, out",
    [
        ("plain", "plain"),
        ("/mnt/with\\040space", "/mnt/with space"),
        ("a\\011b\\012c\\134d", "a\tb\nc\\d"),
        ("\\089", "\\089"),
        ("end\\04", "end\\04"),
        ("end\\", "end\\"),
        ("\\x40", "\\x40"),
        ("\\1234", "S4"),
    ],
)
def test_unescape(s, out):
    assert cgroups.unescape(s) == out


def test_parse_mounts_of_a_hybrid_system():
    assert cgroups.parse_mounts(MOUNT_HYBRID) == {
        "memory": [("/", "/sys/fs/cgroup/memory")],
        "rw": [
            ("/", "/sys/fs/cgroup/memory"),
            ("/", "/sys/fs/cgroup/pids"),
            ("/", "/sys/fs/cgroup/systemd"),
        ],
        "pids": [("/", "/sys/fs/cgroup/pids")],
        "name=systemd": [("/", "/sys/fs/cgroup/systemd")],
        "cgroup2": [("/", "/sys/fs/cgroup/unified")],
    }


def test_parse_mounts_reads_optional_fields_roots_and_escapes():
    text = (
        "short - line\n"
        "30 23 0:26 /docker/abc /sys/fs/cgroup rw shared:9 master:1 - cgroup2 cgroup2 rw\n"
        "31 23 0:27 / /mnt/my\\040cg rw - cgroup2 none rw\n"
        "32 23 0:28 / relative rw - cgroup2 none rw\n"
        "33 23 0:29 / /v1 rw - cgroup none\n"
        "34 23 0:30 / /v1b rw - cgroup none rw,memory\n"
        "35 23 0:31 / /short rw -\n"
        "36 23 0:32 / /t rw - tmpfs tmpfs rw\n"
        "a - b /c /d e f - cgroup2 x y\n"
        "37 23 0:33 / /bare rw - cgroup2\n"
        "\n"
    )
    assert cgroups.parse_mounts(text) == {
        "cgroup2": [
            ("/docker/abc", "/sys/fs/cgroup"),
            ("/", "/mnt/my cg"),
            ("/c", "/d"),
            ("/", "/bare"),
        ],
        "rw": [("/", "/v1b")],
        "memory": [("/", "/v1b")],
    }
    assert cgroups.parse_mounts(None) == {}


# A mount with an empty source: the kernel writes the empty field, so two spaces follow
# the type (``- tmpfs  rw``); split on every space, the super options stay in place.
EMPTY_SOURCE = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs  rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup  rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup  rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2  rw\n"
)


def test_parse_mounts_with_an_empty_source_keeps_the_controllers():
    assert cgroups.parse_mounts(EMPTY_SOURCE) == {
        "rw": [("/", "/sys/fs/cgroup/memory"), ("/", "/sys/fs/cgroup/pids")],
        "memory": [("/", "/sys/fs/cgroup/memory")],
        "pids": [("/", "/sys/fs/cgroup/pids")],
        "cgroup2": [("/", "/sys/fs/cgroup/unified")],
    }


def test_the_memory_limit_is_read_when_the_mount_has_no_source(tmp_path):
    from fixtures_memory import v1_files

    from wizard.probes import memory

    files = v1_files(
        "/job",
        {"/job": {"memory.limit_in_bytes": str(300 << 20) + "\n", "memory.usage_in_bytes": "5\n"}},
        mountinfo=EMPTY_SOURCE,
    )
    out = memory.probe(build(tmp_path, files), oom_log=False)
    assert out["limit_bytes"] == 300 << 20


def test_default_mounts(tmp_path):
    bare = SysRoot(str(tmp_path / "bare"))
    usual = {"memory": [("/", "/sys/fs/cgroup/memory")], "pids": [("/", "/sys/fs/cgroup/pids")]}
    assert cgroups.default_mounts(bare) == usual
    unified = build(tmp_path / "u", {"/sys/fs/cgroup/unified/cgroup.controllers": ""})
    assert cgroups.default_mounts(unified) == {
        **usual,
        "cgroup2": [("/", "/sys/fs/cgroup/unified")],
    }
    both = build(
        tmp_path / "b",
        {"/sys/fs/cgroup/cgroup.controllers": "", "/sys/fs/cgroup/unified/cgroup.controllers": ""},
    )
    assert cgroups.default_mounts(both) == {**usual, "cgroup2": [("/", "/sys/fs/cgroup")]}


# -- locate --------------------------------------------------------------------


def tree(tmp_path, *dirs):
    for d in dirs:
        (tmp_path / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return SysRoot(str(tmp_path))


def test_locate_gives_every_level_up_to_the_mount(tmp_path):
    root = tree(tmp_path, "/sys/fs/cgroup/a/b")
    assert cgroups.locate(root, [("/", "/sys/fs/cgroup")], "/a/b") == (
        [
            ("/sys/fs/cgroup/a/b", "/a/b"),
            ("/sys/fs/cgroup/a", "/a"),
            ("/sys/fs/cgroup", "/"),
        ],
        "/sys/fs/cgroup",
    )
    assert cgroups.locate(root, [("/", "/sys/fs/cgroup")], "/") == (
        [("/sys/fs/cgroup", "/")],
        "/sys/fs/cgroup",
    )


def test_locate_strips_a_containers_mount_root(tmp_path):
    root = tree(tmp_path, "/sys/fs/cgroup/job")
    mounts = [("/docker/abc", "/sys/fs/cgroup")]
    assert cgroups.locate(root, mounts, "/docker/abc/job") == (
        [("/sys/fs/cgroup/job", "/docker/abc/job"), ("/sys/fs/cgroup", "/docker/abc")],
        "/sys/fs/cgroup",
    )
    # outside the mount's root: taken as relative to the mount (a cgroup namespace)
    assert cgroups.locate(root, mounts, "/job") == (
        [("/sys/fs/cgroup/job", "/job"), ("/sys/fs/cgroup", "/")],
        "/sys/fs/cgroup",
    )


def test_locate_takes_the_first_mount_that_has_the_directory(tmp_path):
    root = tree(tmp_path, "/m1", "/m2/x", "/m3/x")
    mounts = [("/", "/m1"), ("/", "/m2"), ("/", "/m3")]
    assert cgroups.locate(root, mounts, "/x") == ([("/m2/x", "/x"), ("/m2", "/")], "/m2")


def test_locate_falls_back_to_the_first_existing_mount_point(tmp_path):
    root = tree(tmp_path, "/m2", "/m3")
    mounts = [("/", "/m1"), ("/k8s", "/m2"), ("/", "/m3")]
    assert cgroups.locate(root, mounts, "/k8s/pod/c") == ([("/m2", "/k8s")], "/m2")
    assert cgroups.locate(root, [("/", "/m3")], "/gone") == ([("/m3", "/")], "/m3")
    assert cgroups.locate(root, [("/", "/m1")], "/gone") is None
    assert cgroups.locate(root, [("bad", "/m3")], "/gone") == ([("/m3", "/")], "/m3")


def test_locate_refuses_a_path_that_climbs_out(tmp_path):
    root = tree(tmp_path, "/sys/fs/cgroup")
    assert cgroups.locate(root, [("/", "/sys/fs/cgroup")], "/../..") is None
    assert cgroups.locate(root, [("/", "/sys/fs/cgroup")], "relative") is None


# -- View ----------------------------------------------------------------------


def test_view_mounts_are_read_once(tmp_path):
    root = build(tmp_path, {"/proc/self/mountinfo": MOUNT_V2})
    view = cgroups.View(root)
    assert view.mounts == {"cgroup2": [("/", "/sys/fs/cgroup")]}
    (tmp_path / "proc/self/mountinfo").write_text(MOUNT_HYBRID)
    assert view.mounts == {"cgroup2": [("/", "/sys/fs/cgroup")]}
    assert view.errors == []


def test_view_reads_all_of_a_long_mountinfo(tmp_path):
    filler = "".join(f"{i} 1 0:{i} / /mnt/m{i} rw - ext4 /dev/x rw\n" for i in range(2000))
    assert len(filler) > cgroups.READ_MAX
    root = build(tmp_path, {"/proc/self/mountinfo": filler + MOUNT_V2})
    assert cgroups.View(root).mounts == {"cgroup2": [("/", "/sys/fs/cgroup")]}


def test_view_mounts_of_garbage_fall_back_to_the_usual_places(tmp_path):
    root = build(
        tmp_path,
        {"/proc/self/mountinfo": "no separator here\n", "/sys/fs/cgroup/cgroup.controllers": ""},
    )
    errors = ["earlier"]
    view = cgroups.View(root, errors)
    assert view.errors is errors
    assert view.mounts == {
        "memory": [("/", "/sys/fs/cgroup/memory")],
        "pids": [("/", "/sys/fs/cgroup/pids")],
        "cgroup2": [("/", "/sys/fs/cgroup")],
    }
    assert errors == ["earlier", "/proc/self/mountinfo: unexpected content 'no separator here'"]


def test_view_keeps_v1_memory_mounts_without_defaults(tmp_path):
    text = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    view = cgroups.View(build(tmp_path, {"/proc/self/mountinfo": text}))
    assert view.mounts == {
        "rw": [("/", "/sys/fs/cgroup/memory")],
        "memory": [("/", "/sys/fs/cgroup/memory")],
    }
    assert view.errors == []


def test_view_without_mountinfo_is_silent(tmp_path):
    view = cgroups.View(SysRoot(str(tmp_path)))
    assert sorted(view.mounts) == ["memory", "pids"]
    assert view.errors == []


def test_membership_of_self_and_of_another_pid(tmp_path):
    root = build(
        tmp_path,
        {
            "/proc/self/cgroup": "0::/user.slice/me\n",
            "/proc/42/cgroup": "4:memory:/jobs/42\n0::/\n",
            "/proc/43/cgroup": "junk\n",
            "/proc/44/cgroup/x": "",
        },
    )
    view = cgroups.View(root)
    assert view.membership() == ("/user.slice/me", {}, "0::/user.slice/me\n")
    assert view.membership(42) == ("/", {"memory": "/jobs/42"}, "4:memory:/jobs/42\n0::/\n")
    assert view.membership(43) == (None, {}, "junk\n")
    assert view.membership(99) == (None, {}, None)
    assert view.membership(44) == (None, {}, None)
    assert view.errors == []  # other processes' files come and go: never an error


def test_membership_of_self_reports_garbage_and_read_errors(tmp_path):
    root = build(tmp_path, {"/proc/self/cgroup": "junk line\n"})
    view = cgroups.View(root)
    assert view.membership("self") == (None, {}, "junk line\n")
    assert view.errors == ["/proc/self/cgroup: unexpected content 'junk line'"]
    blank = cgroups.View(build(tmp_path / "b", {"/proc/self/cgroup": " \n"}))
    assert blank.membership() == (None, {}, " \n")
    assert blank.errors == []
    odd = cgroups.View(build(tmp_path / "d", {"/proc/self/cgroup/x": ""}))
    assert odd.membership() == (None, {}, None)
    assert odd.errors == ["cannot read /proc/self/cgroup: Is a directory"]


def hybrid(tmp_path):
    files = {
        "/proc/self/mountinfo": MOUNT_HYBRID,
        "/proc/self/cgroup": "7:pids:/p/me\n4:memory:/m/me\n0::/u/me\n",
    }
    root = build(tmp_path, files)
    for d in ("memory/m/me", "pids/p/me", "unified/u/me"):
        (tmp_path / "sys/fs/cgroup" / d).mkdir(parents=True)
    return cgroups.View(root)


def test_levels_per_controller(tmp_path):
    view = hybrid(tmp_path)
    assert view.levels("memory", "/m/me") == [
        ("/sys/fs/cgroup/memory/m/me", "/m/me"),
        ("/sys/fs/cgroup/memory/m", "/m"),
        ("/sys/fs/cgroup/memory", "/"),
    ]
    assert view.levels("cgroup2", "/u/me")[0] == ("/sys/fs/cgroup/unified/u/me", "/u/me")
    assert view.levels("memory", None) is None
    assert view.levels("cpu", "/m/me") is None
    assert view.levels("memory", "/../x") is None


def test_memory_and_pids_levels_prefer_v1(tmp_path):
    view = hybrid(tmp_path)
    v2, v1, _ = view.membership()
    version, levels = view.memory_levels(v2, v1)
    assert version == 1
    assert levels[0] == ("/sys/fs/cgroup/memory/m/me", "/m/me")
    assert view.memory_levels(v2, {}) == (
        2,
        [
            ("/sys/fs/cgroup/unified/u/me", "/u/me"),
            ("/sys/fs/cgroup/unified/u", "/u"),
            ("/sys/fs/cgroup/unified", "/"),
        ],
    )
    assert view.memory_levels(None, {}) == (None, None)
    assert view.memory_levels(v2, {"memory": "/../x"}) == (None, None)
    assert view.pids_levels(v2, v1)[0] == ("/sys/fs/cgroup/pids/p/me", "/p/me")
    assert view.pids_levels(v2, {})[0] == ("/sys/fs/cgroup/unified/u/me", "/u/me")
    assert view.pids_levels(None, {}) is None


def test_of_pid(tmp_path):
    view = hybrid(tmp_path)
    base = tmp_path / "proc"
    (base / "50").mkdir()
    (base / "50/cgroup").write_text("4:memory:/m/50\n0::/u/50\n")
    (base / "51").mkdir()
    (base / "51/cgroup").write_text("0::/u/51\n")
    (base / "52").mkdir()
    (base / "52/cgroup").write_text("junk\n")
    assert view.of_pid("self") == (1, "/m/me")
    assert view.of_pid(50) == (1, "/m/50")
    assert view.of_pid(51) == (2, "/u/51")
    assert view.of_pid(52) is None
    assert view.of_pid(53) is None


def test_of_pid_on_v2_only_and_v1_only(tmp_path):
    v2only = build(
        tmp_path / "a",
        {"/proc/self/mountinfo": MOUNT_V2, "/proc/9/cgroup": "4:memory:/m\n0::/u/9\n"},
    )
    assert cgroups.View(v2only).of_pid(9) == (2, "/u/9")
    text = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    v1only = build(tmp_path / "b", {"/proc/self/mountinfo": text, "/proc/9/cgroup": "0::/u/9\n"})
    assert cgroups.View(v1only).of_pid(9) is None


def test_working_set_is_usage_less_inactive_file_cache():
    assert cgroup_files.working_set({"usage_bytes": 100, "inactive": 30}) == 70
    assert cgroup_files.working_set({"usage_bytes": 100, "inactive": 0}) == 100
    assert cgroup_files.working_set({"usage_bytes": 30, "inactive": 100}) == 0
    assert cgroup_files.working_set({"usage_bytes": 100}) == 100
    assert cgroup_files.working_set({"usage_bytes": 0, "inactive": None}) == 0
    assert cgroup_files.working_set({"inactive": 30}) is None
    assert cgroup_files.working_set({}) is None
