"""The wizard's command line as a user sees it: verdicts, JSON, exit codes, colour, questions.

These runs point the wizard at a fixture system tree (WIZARD_SYSROOT) so the memory
state is known: a cgroup v2 with a 2 GiB limit, no kernels, no servers.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.base import exitcodes
from wizard.commands import cli
from wizard.diagnosis import signals
from wizard.report.context import Context

REPO = Path(__file__).resolve().parent.parent
GIB = 1 << 30


def make_tree(root, used=300 << 20, limit=2 * GIB, oom_kill=0, pids=(10, 100), events_max=0):
    """A small Linux system under ``root``: cgroup v2 at /sys/fs/cgroup, our cgroup /job."""
    files = {
        "proc/meminfo": "MemTotal:       24000000 kB\nMemFree:        20000000 kB\n"
        "MemAvailable:   22000000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
        "proc/vmstat": "nr_free_pages 1\noom_kill 0\n",
        "proc/stat": "cpu 1 2 3 4\nbtime 1700000000\n",
        "proc/self/cgroup": "0::/job\n",
        "proc/self/mountinfo": "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
        "proc/pressure/memory": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "sys/fs/cgroup/job/memory.max": f"{limit}\n",
        "sys/fs/cgroup/job/memory.current": f"{used}\n",
        "sys/fs/cgroup/job/memory.peak": f"{used}\n",
        "sys/fs/cgroup/job/memory.events": f"low 0\nhigh 0\nmax 0\noom {oom_kill}\n"
        f"oom_kill {oom_kill}\n",
        "sys/fs/cgroup/job/memory.swap.max": "0\n",
        "sys/fs/cgroup/job/memory.swap.current": "0\n",
        "sys/fs/cgroup/job/pids.max": f"{pids[1]}\n",
        "sys/fs/cgroup/job/pids.current": f"{pids[0]}\n",
        "sys/fs/cgroup/job/pids.events": f"max {events_max}\n",
        "sys/fs/cgroup/memory.max": "max\n",
        "sys/fs/cgroup/pids.max": "max\n",
    }
    for rel, text in files.items():
        p = Path(root, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    Path(root, "home/user").mkdir(parents=True, exist_ok=True)
    Path(root, "run/jupyter").mkdir(parents=True, exist_ok=True)
    return root


class TTYStringIO(io.StringIO):
    def isatty(self):
        return True


def run_cli(args, env, stdin_text=None, tty=False):
    """Run the CLI in-process with swapped streams; return (code, stdout, stderr)."""
    stdin = (TTYStringIO if tty else io.StringIO)(stdin_text or "")
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdin=stdin, stdout=out, stderr=err, environ=env)
    code = cli.run(args, ctx)
    return code, out.getvalue(), err.getvalue()


def point_wizard_at(root, monkeypatch):
    """Make the wizard of this process read the fixture tree ``root`` and nothing else."""
    for k in list(os.environ):
        if k.startswith(("JUPYTER", "WIZARD", "COCALC")):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WIZARD_SYSROOT", str(root))
    monkeypatch.setenv("HOME", "/home/user")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/run/jupyter")
    return root


@pytest.fixture
def system(tmp_path, monkeypatch):
    root = point_wizard_at(make_tree(tmp_path / "root"), monkeypatch)
    monkeypatch.setenv("WIZARD_DOCS_URL", "https://docs.example/kw/")
    env = {"WIZARD_SYSROOT": str(root), "HOME": "/home/user", "NO_COLOR": "1"}
    return root, env


def json_report(args, env):
    code, out, err = run_cli([*args, "--json", "--no-input"], env)
    assert "Traceback" not in err
    return code, json.loads(out)


EXPECTED_RULE = {
    "memory": "killed-sigkill",
    "native": "native-crash",
    "cannot-start": "kernel-exit-code",
    "stopped": "stopped-on-purpose",
}


@pytest.mark.parametrize("row", signals.SIGNALS, ids=lambda r: r["anchor"])
def test_banner_of_each_signal_leads_to_its_verdict(system, row):
    _, env = system
    text = (
        f"Kernel last terminated by signal {row['name']}."
        if row["number"]
        else "Kernel last exited with code 1."
    )
    code, report = json_report(["--banner", text], env)
    findings = report["findings"]
    first = findings[0]
    assert first["id"] == EXPECTED_RULE[row["cause"]], [f["id"] for f in findings]
    assert first["doc_label"] == row["next"]
    assert first["signal_label"] == row["anchor"]
    assert first["signal_url"] == f"https://docs.example/kw/kernel-signals.html#{row['anchor']}"
    # every signal's next step is a section of the one page on terminated kernels
    page = "jupyter-kernel-terminated"
    assert first["url"] == f"https://docs.example/kw/{page}.html#{row['next']}"
    assert f".. _{row['next']}:" in (REPO / "docs" / f"{page}.rst").read_text(encoding="utf-8")
    assert report["banner"]["kind"] in ("signal", "exit")
    expected_code = exitcodes.OK if row["cause"] == "stopped" else exitcodes.PROBLEM
    assert code == expected_code


def test_exit_status_137_is_read_as_sigkill(system):
    _, env = system
    _, report = json_report(["--banner", "Kernel last exited with code 137."], env)
    assert report["banner"]["signal"] == "SIGKILL"
    assert report["findings"][0]["id"] == "killed-sigkill"


def test_healthy_system_exits_zero_and_points_to_other_causes(system):
    _, env = system
    code, report = json_report([], env)
    assert code == exitcodes.OK
    assert [f["id"] for f in report["findings"]] == ["no-memory-evidence", "try-plain-server"]
    assert report["findings"][0]["doc_label"] == "kernel-terminated-other"
    assert report["memory"]["limit_bytes"] == 2 * GIB
    assert report["memory"]["used_bytes"] == 300 << 20


def test_json_schema_fields(system):
    _, env = system
    _, report = json_report([], env)
    assert report["schema"] == "kernel-wizard/2"
    for key in ("memory", "kernels", "servers", "kernelspecs", "findings", "errors", "summary"):
        assert key in report
    for key in ("limit_bytes", "used_bytes", "oom_kills"):
        assert key in report["memory"]
    for f in report["findings"]:
        assert set(f) >= {"id", "severity", "doc_label", "url", "message", "hint"}


def test_oom_kills_and_full_memory_are_problems(system, tmp_path):
    root, env = system
    make_tree(root, used=int(1.95 * GIB), oom_kill=3)
    code, report = json_report([], env)
    ids = [f["id"] for f in report["findings"]]
    assert code == exitcodes.PROBLEM
    assert ids[:2] == ["oom-kills-recorded", "memory-near-limit"]
    assert "3 processes" in report["findings"][0]["message"]
    assert report["findings"][0]["doc_label"] == "kernel-terminated-memory"
    assert "no-memory-evidence" not in ids
    code, text, _ = run_cli(["--no-input"], env)
    assert "Out-of-memory kills: 3 kill(s) in this cgroup" in text
    assert "1.9 GiB of 2.0 GiB used (97%)" in text
    assert "2 problem(s), 0 warning(s) found." in text.splitlines()[-1]


def test_pids_limit_reached(system):
    root, env = system
    make_tree(root, pids=(98, 100), events_max=4)
    _, report = json_report([], env)
    f = next(f for f in report["findings"] if f["id"] == "pids-near-limit")
    assert f["doc_label"] == "too-many-processes"
    assert "98 processes of 100" in f["message"]


def test_banner_moves_its_family_to_the_front(system):
    root, env = system
    make_tree(root, pids=(98, 100), oom_kill=2)
    _, report = json_report(["--banner", "SIGKILL"], env)
    ids = [f["id"] for f in report["findings"]]
    assert ids.index("killed-sigkill") < ids.index("pids-near-limit")
    _, report = json_report(["--banner", "SIGSEGV"], env)
    ids = [f["id"] for f in report["findings"]]
    assert ids.index("native-crash") < ids.index("oom-kills-recorded")


def test_usage_error_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "--no-such-flag"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == exitcodes.USAGE
    assert proc.stderr.count("\n") == 1 and "--no-such-flag" in proc.stderr
    assert proc.stdout == ""


def test_help_does_not_import_psutil_or_probes():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['wizard', '--help']\n"
        "try:\n    runpy.run_module('wizard', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "bad = [m for m in sys.modules if m == 'psutil' or m.startswith('wizard.probes')]\n"
        "print('LOADED', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("env_extra", "tty", "colored"),
    [
        ({}, False, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
        ({"TERM": "dumb"}, True, False),
    ],
)
def test_colour_follows_environment(system, env_extra, tty, colored):
    _, env = system
    env = {k: v for k, v in env.items() if k != "NO_COLOR"}
    env.update(env_extra)
    out = TTYStringIO() if tty else io.StringIO()
    ctx = Context(stdin=io.StringIO(""), stdout=out, stderr=io.StringIO(), environ=env)
    cli.run(["--no-input"], ctx)
    assert ("\033[" in out.getvalue()) is colored


def test_docs_url_option_and_environment(system):
    _, env = system
    _, report = json_report(["--docs-url", "file:///tmp/site"], env)
    assert all(f["url"].startswith("file:///tmp/site/") for f in report["findings"])
    assert report["docs_url"] == "file:///tmp/site/"


def test_interactive_walks_through_the_questions(system):
    root, env = system
    make_tree(root, used=int(1.95 * GIB), oom_kill=1)
    # 1 = the SIGKILL wording; n = not stopped on purpose; n = no need to look further
    code, out, _ = run_cli([], env, stdin_text="1\nn\nn\n", tty=True)
    assert "Step 1 of 4: What did the message say?" in out
    assert "Step 2 of 4: Did you stop the kernel yourself?" in out
    assert "Step 3 of 4: Is it memory?" in out
    assert "Yes, memory is the likely cause" in out
    assert "Step 4 of 4" not in out
    assert code == exitcodes.PROBLEM


def test_interactive_intentional_restart_means_nothing_is_wrong(system):
    _, env = system
    code, out, _ = run_cli([], env, stdin_text="7\ny\n", tty=True)
    assert "nothing is wrong" in out
    assert code == exitcodes.OK


def test_interactive_reaches_other_causes_when_memory_is_fine(system):
    _, env = system
    code, out, _ = run_cli([], env, stdin_text="2\nn\n", tty=True)
    assert "No sign of memory trouble." in out
    assert "Step 4 of 4: Something else?" in out
    assert "native" in out.lower() or "SIGSEGV" in out
    assert code == exitcodes.PROBLEM


def test_no_input_never_reads_stdin(system):
    _, env = system

    reads = []

    class Watched(TTYStringIO):
        """A terminal with answers ready: any read of it is recorded."""

        def __init__(self):
            super().__init__("1\ny\ny\ny\n")

        def read(self, *a):
            reads.append("read")
            return super().read(*a)

        def readline(self, *a):
            reads.append("readline")
            return super().readline(*a)

    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdin=Watched(), stdout=out, stderr=err, environ=env)
    code = cli.run(["--no-input"], ctx)
    assert reads == []
    assert err.getvalue() == ""
    # the healthy fixture: no finding is a problem, so the exit code is 0
    assert code == exitcodes.OK, out.getvalue()
    assert "Step 1 of 4" not in out.getvalue()


def test_broken_pipe_is_quiet(system):
    """The reader goes away after 10 bytes of a report far longer than the pipe holds."""
    _, env = system
    # a long docs address in every finding makes the report overflow the pipe (64 KiB)
    env = dict(env, WIZARD_DOCS_URL="https://docs.example/" + "k" * 60000 + "/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", "--no-input", "-v", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=dict(os.environ, **env, PYTHONPATH=str(REPO)),
    )
    try:
        head = proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert head == b'{\n  "schem'
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert "internal error" not in err
    assert err == ""
    # the verdict is kept: what the full report would have ended with
    full = subprocess.run(
        [sys.executable, "-m", "wizard", "--no-input", "-v", "--json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=REPO,
        env=dict(os.environ, **env, PYTHONPATH=str(REPO)),
        timeout=60,
    )
    assert len(full.stdout) > 1 << 16, "the report overflows the pipe (64 KiB on Linux)"
    assert code == full.returncode
