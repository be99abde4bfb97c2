"""wizard.engines.halt_select on kernels as the probes describe them: names, targets, choices."""

import os

import pytest

from wizard.engines import halt_select as hs

SERVERS = {
    "servers": [
        {"pid": 6, "root_dir": None, "sessions": None},
        {
            "pid": 7,
            "root_dir": "/home/u/work",
            "sessions": [
                {"path": "hw/a.ipynb", "kernel_id": "aaaa1111-0000"},
                {"path": None, "kernel_id": "bbbb2222-0000"},
                {"path": "elsewhere.ipynb", "kernel_id": "other"},
            ],
        },
    ]
}


def k(pid, kid=None, notebook=None, server=7, **more):
    return {"pid": pid, "kernel_id": kid, "notebook": notebook, "server_pid": server, **more}


def test_my_uid():
    assert hs.my_uid() == os.geteuid()


def test_server_of():
    assert hs.server_of(k(1, server=7), SERVERS)["root_dir"] == "/home/u/work"
    assert hs.server_of(k(1, server=6), SERVERS)["pid"] == 6
    assert hs.server_of(k(1, server=8), SERVERS) is None
    assert hs.server_of(k(1, server=None), SERVERS) is None
    assert hs.server_of(k(1), None) is None
    assert hs.server_of(k(1), {"servers": None}) is None


def test_relative():
    assert hs._relative("/home/u/work/hw/a.ipynb", "/home/u/work") == "hw/a.ipynb"
    assert hs._relative("/home/u/work", "/home/u/work") == "."
    assert hs._relative("/home/u/..x/a.ipynb", "/home/u") == "..x/a.ipynb"
    assert hs._relative("/home/u", "/home/u/work") is None
    assert hs._relative("/srv/a.ipynb", "/home/u/work") is None


def test_notebook_names_of_a_session_path_relative_to_the_root():
    names = hs.notebook_names(k(1, "aaaa1111-0000"), SERVERS)
    assert names == {"hw/a.ipynb", "/home/u/work/hw/a.ipynb"}


def test_notebook_names_of_an_absolute_notebook_under_the_root():
    names = hs.notebook_names(k(2, "x", "/home/u/work/./hw/b.ipynb"), SERVERS)
    assert names == {"/home/u/work/./hw/b.ipynb", "/home/u/work/hw/b.ipynb", "hw/b.ipynb"}


def test_notebook_names_outside_the_root_and_without_a_server():
    assert hs.notebook_names(k(3, "x", "/srv/c.ipynb"), SERVERS) == {"/srv/c.ipynb"}
    assert hs.notebook_names(k(3, "x", "d/../c.ipynb", server=None), SERVERS) == {
        "d/../c.ipynb",
        "c.ipynb",
    }
    assert hs.notebook_names(k(3, "x", "c.ipynb", server=6), SERVERS) == {"c.ipynb"}
    assert hs.notebook_names(k(3, "bbbb2222-0000"), SERVERS) == set()


def test_notebook_names_follow_symlinks(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real/n.ipynb").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    nb = str(tmp_path / "link/n.ipynb")
    assert hs.notebook_names(k(4, "x", nb, server=None), SERVERS) == {
        nb,
        str(tmp_path / "real/n.ipynb"),
    }


def test_display_name(monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    assert hs.display_name(k(1, "x", "/home/u/work/hw/a.ipynb"), SERVERS) == "hw/a.ipynb"
    assert hs.display_name(k(1, "x", "/home/u/other/a.ipynb"), SERVERS) == "~/other/a.ipynb"
    assert hs.display_name(k(1, "x", "/home/u/work/a.ipynb")) == "~/work/a.ipynb"
    assert hs.display_name(k(1, "x", "/home/u/w.ipynb", server=6), SERVERS) == "~/w.ipynb"
    assert hs.display_name(k(1, "x", "/home/u2/a.ipynb"), SERVERS) == "/home/u2/a.ipynb"
    assert hs.display_name(k(1, "x", "/home/u"), SERVERS) == "/home/u"
    assert hs.display_name(k(1, "x", "hw/a.ipynb"), SERVERS) == "hw/a.ipynb"
    assert hs.display_name(k(1, "0123456789abcdef")) == "(no notebook) kernel 01234567"
    assert hs.display_name(k(12, None)) == "(no notebook) pid 12"
    assert hs.display_name({}) == "(no notebook) pid None"


@pytest.mark.parametrize("home", ["/", "~"])
def test_display_name_without_a_home(monkeypatch, home):
    monkeypatch.setenv("HOME", home)
    assert hs.display_name(k(1, "x", "/srv/a.ipynb")) == "/srv/a.ipynb"
    assert hs.display_name(k(1, "x", "//srv/a.ipynb")) == "//srv/a.ipynb"


KERNELS = [
    k(101, "aaaa1111-0000"),
    k(102, "abcd2222-1111", "/home/u/work/hw/b.ipynb"),
    k(103, "9999abcd-2222", "/home/u/other/b.ipynb"),
    k(104, "abce3333-3333", "/home/u/work/c.ipynb"),
]


def pids(target, kernels=KERNELS):
    return [x["pid"] for x in hs.resolve(target, kernels, SERVERS)]


def test_resolve_by_pid_id_path_name_and_prefix():
    assert pids(" 103 ") == [103]
    assert pids("abcd2222-1111") == [102]
    assert pids("hw/a.ipynb") == [101]
    assert pids("/home/u/work/./hw/b.ipynb") == [102]
    assert pids("c.ipynb") == [104]
    assert pids("a.ipynb") == [101]
    assert pids("abcd") == [102]
    assert pids("aaaa1") == [101]


def test_resolve_by_a_path_relative_to_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    nb = str(tmp_path / "sub/n.ipynb")
    monkeypatch.chdir(tmp_path)
    assert pids("sub/n.ipynb", [k(5, "x", nb, server=None)]) == [5]
    assert pids("./sub/../sub/n.ipynb", [k(5, "x", nb, server=None)]) == [5]


def test_resolve_by_base_name_needs_one_kernel():
    with pytest.raises(hs.TargetError) as e:
        hs.resolve("b.ipynb", KERNELS, SERVERS)
    assert str(e.value) == (
        "'b.ipynb' matches the notebooks of 2 kernels: /home/u/work/hw/b.ipynb (pid 102), "
        "/home/u/other/b.ipynb (pid 103); give the full path, the kernel id or the pid"
    )
    with pytest.raises(hs.TargetError, match=r"no running kernel of yours matches 'x/b\.ipynb'"):
        hs.resolve("x/b.ipynb", KERNELS, SERVERS)


def test_resolve_by_an_ambiguous_prefix():
    with pytest.raises(hs.TargetError) as e:
        hs.resolve("abc", KERNELS, SERVERS)
    assert "no running kernel of yours matches 'abc'" in str(e.value)
    with pytest.raises(hs.TargetError) as e:
        hs.resolve("abcX", KERNELS, SERVERS)
    assert str(e.value) == (
        "no running kernel of yours matches 'abcX' (a notebook path, kernel id or pid; "
        "`python -m wizard` lists the kernels)"
    )
    more = [*KERNELS, k(105, "abcdffff-0000")]
    with pytest.raises(hs.TargetError) as e:
        hs.resolve("abcd", more, SERVERS)
    assert str(e.value) == (
        "'abcd' matches the kernel ids of 2 kernels: /home/u/work/hw/b.ipynb (pid 102), "
        "(no notebook) kernel abcdffff (pid 105); give the full path, the kernel id or the pid"
    )


def test_resolve_of_an_empty_target_or_an_unknown_pid():
    for t in ("", "   "):
        with pytest.raises(hs.TargetError) as e:
            hs.resolve(t, KERNELS, SERVERS)
        assert str(e.value) == "an empty target names no kernel"
    for t in ("9999", "1010"):
        with pytest.raises(hs.TargetError) as e:
            hs.resolve(t, KERNELS, SERVERS)
        assert str(e.value) == f"no kernel of yours has pid {t} (halt stops kernels, nothing else)"


def test_an_exact_kernel_id_wins_over_a_longer_one_it_starts():
    ks = [k(1, "abcd1234"), k(2, "abcd12345")]
    assert pids("abcd1234", ks) == [1]
    assert pids("abcd12345", ks) == [2]


def test_resolve_of_a_digit_name_that_is_no_pid_is_a_notebook():
    assert pids("2024", [k(9, "x", "/home/u/work/2024", server=7)]) == [9]


def test_resolve_by_a_name_the_server_shows_under_a_different_path():
    ks = [k(101, "aaaa1111-0000", "/mnt/copy/a.ipynb")]
    assert pids("a.ipynb", ks) == [101]
    assert pids("/home/u/work/hw/a.ipynb", ks) == [101]


# -- select ------------------------------------------------------------------------


def fleet():
    return [
        k(201, "i1", "/home/u/work/idle.ipynb", idle_seconds=7200, rss_bytes=100),
        k(202, "b1", "/home/u/work/busy.ipynb", execution_state="busy", rss_bytes=900),
        k(203, "u1", None, server=None, idle_seconds=None, rss_bytes=300),
        k(204, "a1", "/home/u/work/active.ipynb", idle_seconds=60, rss_bytes=500),
        k(205, "i2", "/home/u/work/idle2.ipynb", idle_seconds=1800, rss_bytes=None),
        k(206, "i3", "/home/u/work/idle3.ipynb", idle_seconds=90000, rss_bytes=400),
    ]


def chosen(result):
    return [(x["pid"], why) for x, why in result["chosen"]]


def test_select_named_targets_biggest_first():
    r = hs.select(fleet(), SERVERS, targets=["idle.ipynb", "204", "202"])
    assert chosen(r) == [(202, "named"), (204, "named"), (201, "named")]
    assert r["skipped"] == []


def test_select_nothing():
    assert hs.select(fleet(), SERVERS) == {"chosen": [], "skipped": []}


def test_select_idle_spares_busy_unknown_and_active_kernels():
    r = hs.select(fleet(), SERVERS, idle=1800)
    assert chosen(r) == [(206, "idle 1d 1h"), (201, "idle 2h 00m"), (205, "idle 30m")]
    assert r["skipped"] == [
        {
            "pid": 202,
            "notebook": "/home/u/work/busy.ipynb",
            "name": "busy.ipynb",
            "kind": "busy",
            "reason": "busy running code",
        },
        {
            "pid": 203,
            "notebook": None,
            "name": "(no notebook) kernel u1",
            "kind": "unknown",
            "reason": "no Jupyter server reports its activity, so its idle time is unknown",
        },
    ]


def test_select_idle_with_a_named_target_keeps_the_name_as_the_reason():
    r = hs.select(fleet(), SERVERS, targets=["202"], idle=3600)
    assert chosen(r) == [(202, "named"), (206, "idle 1d 1h"), (201, "idle 2h 00m")]
    assert [s["pid"] for s in r["skipped"]] == [203]


def test_select_all_but_the_spared():
    r = hs.select(fleet(), SERVERS, all_except=["busy.ipynb", "203"])
    assert chosen(r) == [
        (204, "all but the spared"),
        (206, "all but the spared"),
        (201, "all but the spared"),
        (205, "all but the spared"),
    ]
    assert r["skipped"] == [
        {
            "pid": 202,
            "notebook": "/home/u/work/busy.ipynb",
            "name": "busy.ipynb",
            "kind": "spared",
            "reason": "spared by --all-except",
        },
        {
            "pid": 203,
            "notebook": None,
            "name": "(no notebook) kernel u1",
            "kind": "spared",
            "reason": "spared by --all-except",
        },
    ]


def test_spared_wins_over_a_target_and_idle():
    r = hs.select(fleet(), SERVERS, targets=["201", "204"], idle=1800, all_except=["201"])
    assert chosen(r) == [(204, "named"), (206, "idle 1d 1h"), (205, "idle 30m")]
    assert [(s["pid"], s["kind"]) for s in r["skipped"]] == [
        (202, "busy"),
        (203, "unknown"),
        (201, "spared"),
    ]


def test_select_names_notebooks_as_their_server_shows_them():
    ks = [
        k(301, "aaaa1111-0000", rss_bytes=5),
        k(302, "abcd2222-1111", "/home/u/work/hw/b.ipynb", idle_seconds=None, rss_bytes=None),
        k(303, "zz", "/home/u/work/z.ipynb", idle_seconds=10, rss_bytes=1),
    ]
    r = hs.select(ks, SERVERS, targets=["hw/a.ipynb"], idle=5, all_except=["hw/b.ipynb"])
    assert chosen(r) == [(301, "named"), (303, "idle 10s")]
    assert [(s["pid"], s["name"], s["notebook"], s["kind"]) for s in r["skipped"]] == [
        (302, "hw/b.ipynb", "/home/u/work/hw/b.ipynb", "spared")
    ]
    r = hs.select(ks, SERVERS, idle=5)
    assert [(s["pid"], s["name"], s["kind"]) for s in r["skipped"]] == [
        (301, "(no notebook) kernel aaaa1111", "unknown"),
        (302, "hw/b.ipynb", "unknown"),
    ]


def test_select_puts_a_kernel_of_unknown_size_last():
    ks = [k(401, "a", rss_bytes=None), k(402, "b", rss_bytes=1), k(403, "c", rss_bytes=0)]
    r = hs.select(ks, SERVERS, targets=["401", "402", "403"])
    assert chosen(r) == [(402, "named"), (401, "named"), (403, "named")]


def test_select_raises_for_a_bad_target():
    with pytest.raises(hs.TargetError):
        hs.select(fleet(), SERVERS, targets=["nothing-here"])
    with pytest.raises(hs.TargetError):
        hs.select(fleet(), SERVERS, all_except=["nothing-here"])
