"""``wizard.server.metrics``' pure parts, in-process: the recorder's families, the text
format, the textfile directory check and writer."""

import os
import types
from pathlib import Path

from wizard.server import metrics

M = metrics.MEMORY
L = metrics.LIMIT
D = metrics.DEATHS
OOMS = metrics.OOM_KILLS


def rec(known=None, cg=None, host=1000):
    return types.SimpleNamespace(known=known or {}, cg_now=cg or {}, host_total=host)


def test_recorder_metrics_sum_memory_and_take_the_smallest_limit():
    rm = metrics.RecorderMetrics()
    known = {
        1: {"rss": 10, "kernel_name": "python3", "limit": 500},
        2: {"rss": 5, "kernel_name": "python3", "limit": 300},
        3: {"rss": 7, "kernel_name": "ir", "limit": None},
        4: {"rss": None, "kernel_name": "gone", "limit": 1},
        5: {"rss": 2, "kernel_name": None, "limit": 900},
    }
    cg = {"/a": {"oom_kills": 2}, "/b": {"oom_kills": None}, "/c": {}}
    fams = rm.update(rec(known, cg), [{"cause": "exit", "signal": None, "kernel_name": "ir"}])
    assert fams[M] == [
        ({"kernel_name": ""}, 2),
        ({"kernel_name": "ir"}, 7),
        ({"kernel_name": "python3"}, 15),
    ]
    assert fams[L] == [
        ({"kernel_name": ""}, 900),
        ({"kernel_name": "ir"}, 1000),
        ({"kernel_name": "python3"}, 300),
    ]
    assert fams[OOMS] == [({}, 2)]
    assert ({"cause": "exit", "signal": "", "kernel_name": "ir"}, 1) in fams[D]
    assert ({"cause": "oom-kill", "signal": "SIGKILL", "kernel_name": "python3"}, 0) in fams[D]
    assert ({"cause": "oom-kill", "signal": "SIGKILL", "kernel_name": "gone"}, 0) not in fams[D]
    # an OOM count never goes back; cgroups add up
    fams = rm.update(rec({}, {"/a": {"oom_kills": 1}, "/d": {"oom_kills": 3}}))
    assert fams[OOMS] == [({}, 5)]
    assert fams[M] == [] and fams[L] == []


def test_recorder_metrics_without_a_host_total_or_cgroups():
    fams = metrics.RecorderMetrics().update(rec({1: {"rss": 4, "kernel_name": "k"}}, host=None))
    assert fams[M] == [({"kernel_name": "k"}, 4)]
    assert fams[L] == [] and fams[OOMS] == []


def test_death_counter_record():
    c = metrics.DeathCounter()
    assert c.record({"cause": "shutdown"}) is False
    assert c.record({}) is True
    assert c.record({"cause": "weird", "signal": "SIGSEGV", "kernel_name": "k"}) is True
    assert c.record({"cause": "signal", "signal": "SIGSEGV", "kernel_name": "k"}) is True
    assert c.samples() == [
        ({"cause": "signal", "signal": "SIGSEGV", "kernel_name": "k"}, 1),
        ({"cause": "unknown", "signal": "", "kernel_name": ""}, 1),
        ({"cause": "unknown", "signal": "SIGSEGV", "kernel_name": "k"}, 1),
    ]
    c.seen(None)
    c.seen("k")
    c.record({"cause": "oom-kill", "signal": "SIGKILL", "kernel_name": "k"})
    c.seen("k")  # seen again: the count stays
    got = dict((tuple(sorted(lab.items())), n) for lab, n in c.samples())
    assert got[(("cause", "oom-kill"), ("kernel_name", "k"), ("signal", "SIGKILL"))] == 1
    assert got[(("cause", "oom-kill"), ("kernel_name", ""), ("signal", "SIGKILL"))] == 0


def test_text_format_exactly():
    fams = metrics.build(
        [({"cause": "signal", "signal": "SIGSEGV", "kernel_name": 'a"b\\c\nd'}, 2)],
        {"python3": 1.5},
        {"python3": 2**53 + 1.0},
        7,
    )
    lines = metrics.text(fams).split("\n")
    assert lines[0] == f"# HELP {D} {metrics.FAMILIES[D][1]}"
    assert lines[1] == f"# TYPE {D} counter"
    assert lines[2] == f'{D}{{cause="signal",signal="SIGSEGV",kernel_name="a\\"b\\\\c\\nd"}} 2'
    assert f'{M}{{kernel_name="python3"}} 1.5' in lines
    assert f'{L}{{kernel_name="python3"}} {float(2**53 + 1)!r}' in lines
    assert f"# TYPE {M} gauge" in lines and f"{OOMS} 7" in lines
    assert metrics.text(fams).endswith("7\n")
    assert metrics.build([], {}, {}, None)[OOMS] == []
    assert metrics._number(3.0) == "3" and metrics._number(True) == "1"
    assert metrics._number(-2.0) == "-2" and metrics._number(0.25) == "0.25"


def test_check_textfile_dir(tmp_path):
    assert metrics.check_textfile_dir(str(tmp_path)) is None
    assert os.listdir(tmp_path) == []
    gone = tmp_path / "gone"
    assert metrics.check_textfile_dir(str(gone)) == f"--textfile {gone} does not exist"
    f = tmp_path / "f"
    f.write_text("")
    assert metrics.check_textfile_dir(str(f)) == f"--textfile {f} is not a directory"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        said = metrics.check_textfile_dir(str(ro))
        if os.geteuid() != 0:
            assert said.startswith(f"cannot write in --textfile {ro}: ")
    finally:
        ro.chmod(0o700)


def test_write_textfile_returns_its_path_and_leaves_nothing_else(tmp_path):
    fams = metrics.build([], {"k": 1}, {}, None)
    path = metrics.write_textfile(str(tmp_path), fams)
    assert path == os.path.join(str(tmp_path), metrics.TEXTFILE_NAME)
    assert Path(path).read_text() == metrics.text(fams)
    other = metrics.write_textfile(str(tmp_path), fams, name="x.prom")
    assert other.endswith("/x.prom") and os.stat(other).st_mode & 0o777 == 0o644
    assert sorted(os.listdir(tmp_path)) == sorted([metrics.TEXTFILE_NAME, "x.prom"])
    (tmp_path / "d.prom").mkdir()  # the rename fails: no temporary file is left
    try:
        metrics.write_textfile(str(tmp_path), fams, name="d.prom")
    except OSError:
        pass
    else:
        raise AssertionError("a rename over a directory must fail")
    assert sorted(os.listdir(tmp_path)) == sorted([metrics.TEXTFILE_NAME, "x.prom", "d.prom"])


def test_textfile_write_says_the_path_it_could_not_write(tmp_path):
    gone = tmp_path / "gone"
    tf = metrics.Textfile(str(gone))
    said = tf.write(rec())
    assert said.startswith(f"cannot write {gone / metrics.TEXTFILE_NAME}: ")
    tf = metrics.Textfile(str(tmp_path))
    assert tf.write(rec({1: {"rss": 3, "kernel_name": "k"}})) is None
    assert (
        'jupyter_kernel_memory_bytes{kernel_name="k"} 3'
        in (tmp_path / metrics.TEXTFILE_NAME).read_text()
    )
