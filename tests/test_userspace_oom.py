"""systemd-oomd and earlyoom from fixture journals and xattrs (the daemons cannot run here)."""

import os

import pytest

from wizard.diagnosis import rules_memory
from wizard.probes import memory
from wizard.system import userspace_oom
from wizard.system.sysroot import SysRoot

NOW = 1_750_000_000.0
OOMD = (
    f"{NOW - 60:.6f} host systemd-oomd[612]: Killed /user.slice/user-1000.slice/"
    "user@1000.service/app.slice/jupyter.scope due to memory pressure for "
    "/user.slice/user-1000.slice/user@1000.service being 62.54% > 50.00% for > 20s with "
    "reclaim activity"
)
EARLY_TERM = (
    f"{NOW - 30:.6f} host earlyoom[455]: sending SIGTERM to process 4242 uid 1000 "
    '"python3": oom_score 612, VmRSS 5120 MiB, cmdline "python3 -m ipykernel_launcher"'
)
EARLY_KILL = f'{NOW - 29:.6f} host earlyoom[455]: sending SIGKILL to process 4243 uid 0 "x": ...'


def test_journal_lines_parsed():
    kills = userspace_oom.parse_journal(
        [OOMD, EARLY_TERM, EARLY_KILL, "garbage", "1 host kernel: Killed /x due to y"]
    )
    assert [k["killer"] for k in kills] == ["systemd-oomd", "earlyoom", "earlyoom"]
    oomd, term, kill = kills
    assert oomd["cgroup"].endswith("/app.slice/jupyter.scope") and oomd["signal"] == "SIGKILL"
    assert oomd["reason"].startswith("memory pressure for ")
    assert oomd["time"] == pytest.approx(NOW - 60)
    assert (term["signal"], term["pid"], term["uid"], term["name"]) == (
        "SIGTERM",
        4242,
        1000,
        "python3",
    )
    assert kill["signal"] == "SIGKILL"


def tree(tmp_path, journal):
    (tmp_path / "var/log").mkdir(parents=True)
    (tmp_path / "var/log/wizard-fixture-journal").write_text(journal)
    (tmp_path / "proc/77").mkdir(parents=True)
    (tmp_path / "proc/77/comm").write_text("earlyoom\n")
    return SysRoot(str(tmp_path))


def test_probe_from_a_fixture_tree(tmp_path):
    found = userspace_oom.probe(tree(tmp_path, OOMD + "\n"))
    assert found["running"] == ["earlyoom"]
    assert found["journal_status"] == "ok"
    assert [k["killer"] for k in found["kills"]] == ["systemd-oomd"]
    empty = userspace_oom.probe(SysRoot(str(tmp_path / "none")))
    assert empty["journal_status"].startswith("unreadable: ")
    assert empty["kills"] == [] and empty["running"] == []


def test_oomd_kill_inside_our_cgroup_is_ours(tmp_path):
    root = tree(tmp_path, OOMD + "\n")
    ours = memory.userspace(root, [], "/user.slice/user-1000.slice", False)
    assert [k["ours"] for k in ours["kills"]] == [True]
    theirs = memory.userspace(root, [], "/user.slice/user-1001.slice", False)
    assert [k["ours"] for k in theirs["kills"]] == [False]
    # /user.slice/user-1000 is not inside /user.slice/user-100
    near = memory.userspace(root, [], "/user.slice/user-100", False)
    assert [k["ours"] for k in near["kills"]] == [False]


def facts(kills, xattrs=None):
    return {
        "now": NOW,
        "memory": {"userspace_oom": {"kills": kills, "xattr_kills": xattrs or {}}},
        "kernels": {"kernels": []},
    }


def test_rule_names_oomd_and_says_no_kernel_line():
    (oomd,) = userspace_oom.parse_journal([OOMD])
    hit = rules_memory.userspace_oom_kill(facts([oomd | {"ours": True}]))
    assert hit["severity"] == "problem"
    assert "systemd-oomd killed every process of /user.slice/" in hit["message"]
    assert "kernel log shows no kill" in hit["hint"]
    assert rules_memory.userspace_oom_kill(facts([oomd | {"ours": False}])) is None


def test_rule_earlyoom_sigterm_is_not_a_clean_shutdown():
    (term,) = userspace_oom.parse_journal([EARLY_TERM])
    hit = rules_memory.userspace_oom_kill(facts([term | {"ours": None}]))
    assert hit["severity"] == "warning"  # earlyoom is not cgroup-aware: possibly ours
    assert "earlyoom sent SIGTERM to python3 (pid 4242" in hit["message"]
    assert "did not shut down cleanly" in hit["message"]
    old = term | {"ours": None, "time": NOW - 3 * 86400}
    assert rules_memory.userspace_oom_kill(facts([old])) is None


def test_oomd_xattr_on_our_cgroup(tmp_path):
    d = tmp_path / "sys/fs/cgroup/app.scope"
    d.mkdir(parents=True)
    try:
        os.setxattr(d, "user.oomd_kill", b"3")
    except (OSError, AttributeError):
        pytest.skip("this file system keeps no user xattrs")
    root = SysRoot(str(tmp_path))
    marks = userspace_oom.oomd_xattrs(root, ["/sys/fs/cgroup/app.scope", "/sys/fs/cgroup"])
    assert marks == {"/sys/fs/cgroup/app.scope": 3}
    hit = rules_memory.userspace_oom_kill(facts([], marks))
    assert hit["severity"] == "problem" and "user.oomd_kill=3" in hit["message"]


def test_earlyoom_sigterm_is_not_a_stop_on_purpose():
    from wizard.diagnosis import rules_banner

    (term,) = userspace_oom.parse_journal([EARLY_TERM])
    f = facts([term | {"ours": None}])
    f["banner"] = {"signal": "SIGTERM", "kind": "signal", "row": None}
    assert rules_banner.stopped_on_purpose(f) is None
    f["memory"]["userspace_oom"]["kills"] = []
    assert rules_banner.stopped_on_purpose(f) is not None


def test_the_running_daemons_come_from_the_one_scan_of_proc(tmp_path):
    """The full report finds a running earlyoom in the kernels probe's own /proc scan,
    not in a second pass over every process."""
    from fixtures_memory import GiB, build, v2_cgroup, v2_files

    from wizard.probes import collect

    files = v2_files("/a", {"/": v2_cgroup(), "/a": v2_cgroup(max=GiB)})
    files["/proc/455/cmdline"] = "/usr/bin/earlyoom\0-r\0003600\0"
    files["/proc/455/comm"] = "earlyoom\n"
    files["/proc/456/cmdline"] = "/usr/lib/systemd/systemd-oomd\0"
    files["/proc/457/cmdline"] = "vim\0notes-about-oom.txt\0"
    root = build(tmp_path, files)
    facts = collect.gather(root)
    assert facts["memory"]["userspace_oom"]["running"] == ["earlyoom", "systemd-oomd"]
    # the probe on its own still scans for itself
    assert memory.probe(root)["userspace_oom"]["running"] == ["earlyoom"]  # comm files only
