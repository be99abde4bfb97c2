"""What the wizard concludes from the evidence, exactly: the order of its findings, how a
SIGKILL is explained, which kernel-log kill belongs to which process, when a cgroup's
OOM count blames the OOM killer, and that secrets never reach the output."""

import json
import time

import pytest
from fixtures_memory import GiB, MiB, build, v2_cgroup, v2_files

from wizard.diagnosis import deathtext, rules
from wizard.diagnosis import endings as deaths
from wizard.diagnosis.common import INFO, PROBLEM, WARNING
from wizard.engines import evidence as evidence_mod
from wizard.engines import store as store_mod
from wizard.engines.recorder import Recorder
from wizard.probes import servers

# -- Ranking ---------------------------------------------------------------------------


def finding(rule_id, severity):
    rule = next(r for r in rules.RULES if r["id"] == rule_id)
    return {"id": rule_id, "severity": severity, "cause": rule["cause"]}


def test_severity_outranks_the_table_order():
    first, middle, last = rules.RULES[0]["id"], rules.RULES[5]["id"], rules.RULES[-1]["id"]
    ranked = rules.rank([finding(first, INFO), finding(middle, WARNING), finding(last, PROBLEM)])
    assert [f["id"] for f in ranked] == [last, middle, first]


def test_within_a_severity_the_banners_family_then_the_table_order():
    ids = [r["id"] for r in rules.RULES]
    memory = next(r["id"] for r in rules.RULES if r["cause"] == "memory")
    native = next(r["id"] for r in rules.RULES if r["cause"] == "native")
    later_memory = [r["id"] for r in rules.RULES if r["cause"] == "memory"][1]
    found = [finding(later_memory, PROBLEM), finding(native, PROBLEM), finding(memory, PROBLEM)]
    by_table = sorted([memory, native, later_memory], key=ids.index)
    assert [f["id"] for f in rules.rank(found)] == by_table
    assert [f["id"] for f in rules.rank(found, "native")] == [
        native,
        *[i for i in by_table if i != native],
    ]
    # the banner's family does not lift a warning above a problem
    mixed = [finding(native, WARNING), finding(memory, PROBLEM)]
    assert [f["id"] for f in rules.rank(mixed, "native")] == [memory, native]


# -- How a SIGKILL is explained ---------------------------------------------------------


def test_sigkill_with_the_oom_record_readable_and_no_kill_is_someone_elses_kill():
    ev = {"returncode": -9, "status_source": "server", "oom_checked": True}
    assert deaths.classify(ev) == (
        "signal",
        "SIGKILL",
        "exit status from the server; no OOM kill was counted: killed by someone "
        "(kill -9, a forced restart)",
    )


def test_sigkill_without_the_oom_record_is_most_likely_the_oom_killer():
    ev = {"returncode": -9, "status_source": "zombie", "oom_checked": False}
    assert deaths.classify(ev) == (
        "signal",
        "SIGKILL",
        "exit status read from /proc; most often the OOM killer, whose record could not be "
        "read here",
    )
    assert deaths.classify({"returncode": -9})[2] == (
        "signal; most often the OOM killer, whose record could not be read here"
    )


def test_sigkill_lines_as_the_reports_word_them():
    base = {"pid": 4941, "time": time.time(), "cause": "signal", "signal": "SIGKILL"}
    checked = dict(base, detail=deaths.classify({"returncode": -9, "oom_checked": True})[2])
    unchecked = dict(base, detail=deaths.classify({"returncode": -9})[2])
    assert deathtext.describe(checked).endswith("; killed by SIGKILL (no OOM kill was recorded)")
    assert deathtext.describe(unchecked).endswith("; killed by SIGKILL")


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        (
            {"oom": "kernel-log", "returncode": -11},
            ("oom-kill", "SIGKILL", "the kernel log names it as killed for lack of memory"),
        ),
        (
            {"requested": "restart", "returncode": -9},
            ("shutdown", "SIGKILL", "restarted on request (SIGKILL)"),
        ),
        (
            {"requested": "shutdown", "returncode": 0},
            ("shutdown", None, "shut down on request (exit code 0)"),
        ),
        ({"requested": "server-gone"}, ("shutdown", None, "its Jupyter server stopped")),
        ({"requested": "elsewhere"}, ("shutdown", None, "elsewhere")),
        ({"returncode": -11, "oom": "counter"}, ("signal", "SIGSEGV", "signal")),
        (
            {"returncode": -6, "status_source": "server"},
            ("signal", "SIGABRT", "exit status from the server"),
        ),
        (
            {"returncode": 137, "oom": "counter"},
            ("oom-kill", "SIGKILL", "its cgroup's OOM-kill count rose when it died"),
        ),
        ({"returncode": 3, "oom": "counter"}, ("exit", None, "exit code 3")),
        (
            {"returncode": 0, "status_source": "zombie"},
            ("exit", None, "exit code 0 (exit status read from /proc)"),
        ),
        ({"returncode": 128}, ("exit", None, "exit code 128")),
        ({"returncode": 143}, ("signal", "SIGTERM", "signal")),
        (
            {"returncode": None, "oom": "counter"},
            ("oom-kill", "SIGKILL", "its cgroup's OOM-kill count rose when it died"),
        ),
        ({"log_signal": "SIGBUS"}, ("signal", "SIGBUS", "the kernel log shows the fault")),
        (
            {"status_source": "weird"},
            ("unknown", None, "it vanished between two samples and left no evidence"),
        ),
        ({}, ("unknown", None, "it vanished between two samples and left no evidence")),
    ],
)
def test_the_order_of_the_evidence(ev, expected):
    assert deaths.classify(ev) == expected


def test_signal_names_and_wait_statuses():
    assert deaths.signal_name(None) is None
    assert deaths.signal_name(11) == "SIGSEGV"
    assert deaths.signal_name(9) == "SIGKILL"
    assert deaths.signal_name(99) == "signal 99"
    assert deaths.returncode_from_wait_status(None) is None
    assert deaths.returncode_from_wait_status(-1) is None
    assert deaths.returncode_from_wait_status(0) == 0
    assert deaths.returncode_from_wait_status(9) == -9
    assert deaths.returncode_from_wait_status(0x8B) == -11  # core dumped flag
    assert deaths.returncode_from_wait_status(3 << 8) == 3
    assert deaths.returncode_from_wait_status(0x1FF00) == 255
    assert deaths.describe_returncode(None) == (None, None)
    assert deaths.describe_returncode(-15) == ("SIGTERM", None)
    assert deaths.describe_returncode(0) == (None, 0)
    assert deaths.describe_returncode(128) == (None, 128)
    assert deaths.describe_returncode(129) == ("SIGHUP", None)
    assert deaths.describe_returncode(139) == ("SIGSEGV", None)
    assert deaths.describe_returncode(160) == (None, 160)  # 32 is no signal of the table


# -- Which kernel-log record belongs to which process ------------------------------------

KILL = (
    "Out of memory: Killed process 4321 (python3) total-vm:9000kB, anon-rss:7000kB, "
    "file-rss:0kB, shmem-rss:0kB, UID:1000"
)
FAULT = "python3[4321]: segfault at 0 ip 00007f sp 00007ffd error 4 in libc.so.6"


def test_a_kernel_log_kill_before_the_process_started_is_another_process_with_its_pid():
    ev = evidence_mod.Evidence()
    ev.feed([(1000.0, KILL), (1000.0, FAULT)])
    kill, fault = ev.about(4321, since=1000.0)
    assert kill == {"time": 1000.0, "rss_bytes": 7000 * 1024, "cgroup_oom": False}
    assert fault == "SIGSEGV"
    # clocks differ by a few seconds: a record up to 5 s before the start still counts
    assert ev.about(4321, since=1005.0)[0] is not None
    assert ev.about(4321, since=1005.0)[1] == "SIGSEGV"
    # a record from before that is an older process that had the same pid
    assert ev.about(4321, since=1005.5) == (None, None)
    assert ev.about(4321, since=5000.0) == (None, None)
    assert ev.about(4321)[0] is not None  # the start is unknown: it may be ours
    assert ev.about(4322, since=900.0) == (None, None)


# -- The recorder: an OOM count that rose, or did not -------------------------------------


def recorder_root(tmp_path, oom_kills):
    files = v2_files(
        "/job",
        {
            "/": v2_cgroup(),
            "/job": v2_cgroup(
                max=GiB,
                current=900 * MiB,
                events=f"low 0\nhigh 0\nmax 3\noom 1\noom_kill {oom_kills}\n",
            ),
        },
    )
    return build(tmp_path, files)


def set_oom_kills(tmp_path, n):
    (tmp_path / "sys/fs/cgroup/job/memory.events").write_text(
        f"low 0\nhigh 0\nmax 3\noom 1\noom_kill {n}\n"
    )


@pytest.fixture
def store(tmp_path):
    s = store_mod.Store(str(tmp_path / "history.sqlite3"))
    yield s
    s.close()


def test_an_unchanged_oom_count_does_not_blame_the_oom_killer(tmp_path, store):
    root = recorder_root(tmp_path / "root", 2)
    rec = Recorder(store, root=root, servers=False)
    now = time.time()
    rec.tick(now=now - 30)  # the count, while the kernel was alive
    death = rec.note_exit({"pid": 5001, "kernel_id": "k1", "returncode": -9, "time": now})
    assert (death["cause"], death["signal"]) == ("signal", "SIGKILL")
    assert "no OOM kill was counted" in death["detail"]
    assert death["limit_bytes"] == GiB


def test_a_risen_oom_count_is_an_oom_kill(tmp_path, store):
    root = recorder_root(tmp_path / "root", 2)
    rec = Recorder(store, root=root, servers=False)
    now = time.time()
    rec.tick(now=now - 30)
    set_oom_kills(tmp_path / "root", 3)
    death = rec.note_exit({"pid": 5002, "kernel_id": "k2", "returncode": -9, "time": now})
    assert (death["cause"], death["signal"]) == ("oom-kill", "SIGKILL")
    assert death["detail"] == "its cgroup's OOM-kill count rose when it died"


# -- Secrets ------------------------------------------------------------------------------

TOKEN = "t0k3n-" + "b" * 40


def test_scrub_hides_every_occurrence_of_every_secret():
    text = f"http://h/?token={TOKEN} and again {TOKEN}; password s3cr3t-pa55"
    assert servers.scrub(text, [TOKEN, "s3cr3t-pa55"]) == (
        "http://h/?token=<hidden> and again <hidden>; password <hidden>"
    )
    assert servers.scrub("nothing secret", [TOKEN]) == "nothing secret"


def test_a_token_in_the_servers_url_path_is_not_shown(tmp_path, monkeypatch):
    import os

    from wizard.system.sysroot import SysRoot

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    info = {
        "base_url": f"/user/{TOKEN}/",
        "hostname": "127.0.0.1",
        "pid": os.getpid(),
        "port": 1,
        "secure": False,
        "sock": "",
        "token": TOKEN,
        "url": f"http://127.0.0.1:1/user/{TOKEN}/",
    }
    (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info))
    result = servers.probe(SysRoot(), timeout_total=2.0)
    (s,) = result["servers"]
    assert s["url"] == "http://127.0.0.1:1/user/<hidden>/"
    assert s["reachable"] is False
    assert TOKEN not in json.dumps(result)
