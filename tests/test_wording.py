"""Wording a user reads: marks that match the facts, counts that match the list, paths
that can be pasted."""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import make_tree, point_wizard_at, run_cli

from wizard.base.invocation import command
from wizard.engines import store as store_mod
from wizard.report.printer import wrap

REPO = Path(__file__).resolve().parent.parent

FORBIDDING_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(403); self.end_headers(); self.wfile.write(b"forbidden")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def wizard_text(env_extra, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "WIZARD"))}
    env.update(NO_COLOR="1", PYTHONPATH=str(REPO), **env_extra)
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "--no-input", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_a_server_answering_403_is_not_marked_ok(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-c", FORBIDDING_SERVER, "jupyter-server"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        runtime = tmp_path / "runtime"
        runtime.mkdir()
        info = {
            "pid": server.pid,
            "port": port,
            "hostname": "127.0.0.1",
            "url": f"http://127.0.0.1:{port}/",
            "base_url": "/",
            "token": "s3cr3t-token-value",
            "secure": False,
            "root_dir": str(tmp_path),
        }
        (runtime / f"jpserver-{server.pid}.json").write_text(json.dumps(info))
        out = wizard_text({"JUPYTER_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path)})
    finally:
        server.kill()
        server.wait()
    (line,) = [ln for ln in out.splitlines() if "Jupyter servers:" in ln]
    assert line.startswith("[!] Jupyter servers: 1 running, 0 answering; 1 refusing requests")
    assert f"A Jupyter server (pid {server.pid}) answers but refuses the wizard's requests" in out
    assert "HTTP 403" in out
    assert "s3cr3t-token-value" not in out


def test_an_unreadable_runtime_dir_is_not_none_running(tmp_path):
    not_a_dir = tmp_path / "runtime"
    not_a_dir.write_text("")
    out = wizard_text({"JUPYTER_RUNTIME_DIR": str(not_a_dir), "HOME": str(tmp_path)})
    (line,) = [ln for ln in out.splitlines() if "Jupyter servers:" in ln]
    assert "none running" not in line
    assert f"not known: the runtime dir is unreadable ({not_a_dir}: Not a directory)" in line


def test_a_short_kernel_id_says_how_long_it_must_be(tmp_path):
    env = {"HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "none")}
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "WIZARD"))}
    e.update(NO_COLOR="1", PYTHONPATH=str(REPO), **env)
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "halt", "f0e"],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "no running kernel of yours matches 'f0e': the start of a kernel id needs 4 or more "
        f"characters (`{command()}` lists the kernels)"
    )


def test_an_nbformat_3_notebook_gets_a_quoted_copy_command(tmp_path):
    nb = tmp_path / "my old.ipynb"
    nb.write_text(json.dumps({"nbformat": 3, "worksheets": [{"cells": []}], "metadata": {}}))
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "WIZARD"))}
    e.update(NO_COLOR="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "run", str(nb)],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    copy = tmp_path / "my old-v4.ipynb"
    assert (
        f"convert a copy (the original stays as it is): jupyter nbconvert --to notebook "
        f"--output 'my old-v4' '{nb}', then {command('run', shlex.quote(str(copy)))}"
    ) in proc.stderr
    assert "--inplace" not in proc.stderr


def test_a_recorded_crash_names_its_notebook_in_the_run_hint(tmp_path, monkeypatch):
    root = point_wizard_at(make_tree(tmp_path / "root"), monkeypatch)
    db = root / "home/user/.local/share/kernel-wizard/history.sqlite3"
    db.parent.mkdir(parents=True)
    s = store_mod.Store(str(db))
    s.record_death(
        {
            "pid": 4242,
            "kernel_id": "kid-4242",
            "notebook": "/home/user/my work/seg.ipynb",
            "returncode": -11,
            "status_source": "server",
            "time": time.time() - 600,
        }
    )
    s.close()
    env = {"WIZARD_SYSROOT": str(root), "HOME": "/home/user", "NO_COLOR": "1"}
    _, out, _ = run_cli(["--no-input", "--json"], env)
    cmds = [c for f in json.loads(out)["findings"] for c in f["commands"]]
    assert command("run", shlex.quote("/home/user/my work/seg.ipynb")) in cmds
    assert not any("YOUR_NOTEBOOK" in c for c in cmds)
    _, text, _ = run_cli(["--no-input"], env)
    assert "The message:" not in text  # no banner was given: the link is the signal's
    assert "     The signal: " in text


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (
            "  1. [x] The kernel was killed with SIGKILL, but no out-of-memory kill is on record",
            [
                "  1. [x] The kernel was killed with",
                "         SIGKILL, but no out-of-memory",
                "         kill is on record",
            ],
        ),
        ("       $ python -m wizard run 'a very long notebook name indeed.ipynb'", None),
        ("     Read: https://kernel-wizard.example/a/very/long/address.html#anchor", None),
    ],
)
def test_long_lines_wrap_to_the_width_under_their_text(text, lines):
    assert wrap(text, 40) == (lines or [text])
    assert all(len(x) <= 40 for x in lines or [])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")
def test_on_a_terminal_long_lines_are_wrapped_to_its_width(tmp_path):
    import fcntl
    import struct
    import termios

    from test_tty import Terminal

    root = make_tree(tmp_path / "root")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "WIZARD"))}
    env.update(
        NO_COLOR="1",
        TERM="xterm",
        LANG="C.UTF-8",
        PYTHONPATH=str(REPO),
        WIZARD_SYSROOT=str(root),
        HOME="/home/user",
        JUPYTER_RUNTIME_DIR="/run/jupyter",
    )
    env.pop("COLUMNS", None)

    class Sized(Terminal):
        def __init__(self, *args, env):
            self.master, slave = os.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wizard", *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=REPO,
                env=env,
            )
            os.close(slave)
            self.screen = ""

    t = Sized("--no-input", "--banner", "Kernel last terminated by signal SIGKILL.", env=env)
    assert t.finish() == 1
    lines = t.screen.replace("\r\n", "\n").splitlines()
    prose = [ln for ln in lines if "://" not in ln and "$ " not in ln]
    assert max(len(ln) for ln in prose) <= 59
    i = next(n for n, ln in enumerate(lines) if ln.startswith("  1. [!] The kernel was killed"))
    assert lines[i + 1].startswith("         ") and lines[i + 1][9] != " "


def test_run_memory_lines_do_not_contradict_each_other(tmp_path):
    from test_cmd_run import notebook
    from test_cmd_run import wizard as run_wizard

    from wizard.base import fmt

    nb = notebook(tmp_path / "small.ipynb", "import json\nprint(len(json.dumps([1] * 1000)))")
    code, out, _ = run_wizard(tmp_path, nb, "--json", nb=nb)
    m = json.loads(out)["memory"]
    code, out, _ = run_wizard(tmp_path, nb, nb=nb)
    assert code == 0
    (peak,) = [ln for ln in out.splitlines() if "Peak memory:" in ln]
    measured = out.splitlines()[out.splitlines().index(peak) + 1]
    rss = m["peak_rss_bytes"]
    if rss and m["peak_bytes"] and rss > m["peak_bytes"]:
        assert "resident set size at most" not in measured
        assert measured.endswith(
            "(what the limit counts); resident size with the pages shared with other "
            f"processes: at most {fmt.size(rss)}"
        )
