"""``python -m wizard run NOTEBOOK``: real runs of notebooks these tests write.

Every run goes through the real command line in a subprocess, with its own
TMPDIR; after each one the notebook must be byte-identical and the TMPDIR empty.
"""

import ast
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need

from wizard.engines import run_exec, run_markers
from wizard.system import cgroup_child
from wizard.system.sysroot import SysRoot

REPO = Path(__file__).resolve().parent.parent
DOCS = "https://docs.example/kw/"
MIB = 1 << 20


def notebook(path, *cells, kernel=None):
    """Write an nbformat 4 notebook; a cell starting with '#md' is a Markdown cell."""
    nb_cells = []
    for src in cells:
        if src.startswith("#md"):
            nb_cells.append({"cell_type": "markdown", "metadata": {}, "source": src})
        else:
            nb_cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": src.splitlines(True),
                }
            )
    meta = {"language_info": {"name": "python"}}
    if kernel:
        meta["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    path.write_text(
        json.dumps(
            {"cells": nb_cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1
        )
    )
    return path


def env_for(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "WIZARD"))}
    tmp = tmp_path / "tmpdir"
    tmp.mkdir(exist_ok=True)
    env.update(
        TMPDIR=str(tmp),
        NO_COLOR="1",
        WIZARD_DOCS_URL=DOCS,
        PYTHONPATH=str(REPO),
        JUPYTER_PATH=str(tmp_path / "jupyter"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-user"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env


def wizard(tmp_path, *args, nb=None, env=None, timeout=120):
    """Run the command; check that the notebook is untouched and no temp file is left."""
    env = env or env_for(tmp_path)
    before = nb.read_bytes() if nb else None
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "run", *map(str, args)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if nb is not None:
        assert nb.read_bytes() == before, "the notebook was modified"
    assert os.listdir(env["TMPDIR"]) == [], "temporary files were left behind"
    # The cells' own tracebacks are shown; never one from the wizard itself.
    assert f'File "{REPO}/wizard/' not in proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def report(stdout):
    data = json.loads(stdout)
    assert data["schema"] == "kernel-wizard-run/1"
    return data


def cgroup_allowed():
    try:
        _, path = cgroup_child.own_memory_cgroup(SysRoot("/"))
    except (OSError, ValueError):
        return False
    return os.access(path, os.W_OK)


# -- how it ends -----------------------------------------------------------------------


def test_a_notebook_that_runs_through(tmp_path):
    nb = notebook(
        tmp_path / "fine.ipynb",
        "#md # A title",
        "import os\nprint('folder', os.getcwd())",
        "x = 6 * 7\nx",
        "for i in range(3):\n    print('line', i)",
    )
    code, out, _ = wizard(tmp_path, nb, nb=nb)
    assert code == 0, out
    # One progress line per code cell, numbered as the notebook shows them.
    assert [ln.split(" ── ")[0] for ln in out.splitlines() if ln.startswith("── cell")] == [
        "── cell 2 (1/3)",
        "── cell 3 (2/3)",
        "── cell 4 (3/3)",
    ]
    # The cells' output, in order, from the notebook's folder; the last value is shown.
    assert f"folder {tmp_path}\n" in out
    assert out.index("folder") < out.index("\n42\n") < out.index("line 0\nline 1\nline 2\n")
    assert "How it ended: finished, every cell ran" in out
    assert "Peak memory: " in out
    assert f"{DOCS}jupyter-kernel-terminated.html#kernel-terminated-eliminate-ui" in out


def test_an_exception_in_cell_3_names_the_cell_and_line(tmp_path):
    nb = notebook(
        tmp_path / "raises.ipynb",
        "def ratio(a, b):\n    return a / b",
        "values = [1, 2, 0]",
        "print('computing')\nresult = ratio(1, values[2])\nprint('never')",
        "print('not reached')",
    )
    code, out, _ = wizard(tmp_path, nb, nb=nb)
    assert code == 1
    assert "computing" in out and "never" not in out and "not reached" not in out
    assert 'File "<cell 3>", line 2' in out  # the traceback as Python prints it
    assert "How it ended: ZeroDivisionError in cell 3: division by zero" in out
    assert "cell 3, line 2: result = ratio(1, values[2])" in out
    assert "raised in cell 1, line 2: return a / b" in out
    assert "#kernel-terminated-eliminate-jupyter" in out

    code, out, err = wizard(tmp_path, nb, "--json", nb=nb)
    r = report(out)
    assert code == 1 and r["exit_code"] == 1
    assert (r["outcome"], r["cell"], r["line"]) == ("exception", 3, 2)
    assert r["exception"]["type"] == "ZeroDivisionError"
    assert r["verdict"]["kind"] == "exception"
    assert "computing" in err  # with --json the cells' output goes to stderr
    assert r["cells_run"] == [1, 2, 3]


def test_a_segfault_is_named_with_its_cell_and_the_python_stack(tmp_path):
    nb = notebook(
        tmp_path / "crash.ipynb",
        "import ctypes",
        "#md the crash",
        "print('about to crash', flush=True)\nctypes.string_at(0)",
    )
    code, out, _ = wizard(tmp_path, nb, nb=nb)
    assert code == 1
    assert "about to crash" in out
    assert "How it ended: killed by SIGSEGV (signal 11) in cell 3" in out
    assert "Segmentation fault" in out
    assert "Python stack at the crash" in out
    stack = out[out.index("Python stack at the crash") :]
    assert "in string_at" in stack and "cell 3, line 2: ctypes.string_at(0)" in stack
    assert "run_child.py" not in stack
    assert "A crash in native code" in out
    assert f"{DOCS}jupyter-kernel-terminated.html#kernel-terminated-eliminate-jupyter" in out
    assert f"{DOCS}kernel-signals.html#signal-sigsegv" in out

    code, out, _ = wizard(tmp_path, nb, "--json", nb=nb)
    r = report(out)
    assert code == 1
    assert r["outcome"] == "signal" and r["cell"] == 3 and r["line"] == 2
    assert r["signal"]["name"] == "SIGSEGV" and r["signal"]["number"] == 11
    assert r["verdict"]["kind"] == "native"
    assert r["verdict"]["url"] == (
        f"{DOCS}jupyter-kernel-terminated.html#kernel-terminated-eliminate-jupyter"
    )
    assert r["verdict"]["signal_url"] == f"{DOCS}kernel-signals.html#signal-sigsegv"
    assert any(f["file"] == "<cell 3>" and f["line"] == 2 for f in r["native_stack"])
    assert r["memory"]["peak_bytes"] > MIB


def test_an_abort_is_a_native_crash(tmp_path):
    nb = notebook(tmp_path / "abort.ipynb", "import os\nos.abort()")
    code, out, _ = wizard(tmp_path, nb, "--json", "--docs-url", "https://other.example/x", nb=nb)
    r = report(out)
    assert code == 1
    assert r["signal"]["name"] == "SIGABRT" and r["verdict"]["kind"] == "native"
    assert (
        r["verdict"]["signal_url"] == "https://other.example/x/kernel-signals.html#signal-sigabrt"
    )


def test_past_the_memory_limit_in_a_child_cgroup_is_memory(tmp_path):
    need(os.geteuid() == 0 and cgroup_allowed(), "a writable memory cgroup (root)")
    nb = notebook(
        tmp_path / "big.ipynb",
        "print('allocating', flush=True)",
        "x = bytearray(300 * 1024 * 1024)\nx[::4096] = b'\\1' * len(x[::4096])\nprint('survived')",
    )
    code, out, err = wizard(tmp_path, nb, "--memory-limit", "100M", "--json", nb=nb)
    r = report(out)
    assert code == 1
    assert "allocating" in err and "survived" not in err
    m = r["memory"]
    assert m["limit_mode"].startswith("cgroup v"), m
    assert m["limit_bytes"] == 100 * MIB
    assert r["outcome"] == "signal" and r["signal"]["name"] == "SIGKILL" and r["cell"] == 2
    assert m["oom_kills"] >= 1 and m["oom_where"] == ["child cgroup"]
    assert 90 * MIB <= m["peak_bytes"] <= 101 * MIB
    assert r["verdict"]["kind"] == "memory"
    assert r["verdict"]["url"] == f"{DOCS}jupyter-kernel-terminated.html#kernel-terminated-memory"
    assert r["verdict"]["see_also"][0]["url"] == f"{DOCS}low-memory.html#low-memory"
    assert r["verdict"]["signal_url"] == f"{DOCS}kernel-signals.html#signal-sigkill"
    assert m["cgroup"]["removed"] is True and not os.path.exists(m["cgroup"]["path"])

    code, out, _ = wizard(tmp_path, nb, "--memory-limit", "100M", nb=nb)
    assert code == 1
    assert "How it ended: killed by SIGKILL (signal 9) in cell 2" in out
    assert "of 100 MiB" in out and "Out-of-memory kills during the run: 1" in out
    assert "Verdict: Out of memory" in out


def test_without_a_cgroup_the_limit_is_an_address_space_limit(tmp_path):
    # A fixture system root: the wizard may not make cgroups there, so it falls back.
    fixture = tmp_path / "root"
    (fixture / "proc").mkdir(parents=True)
    (fixture / "proc/meminfo").write_text(
        "MemTotal: 8000000 kB\nMemAvailable: 6000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"
    )
    (fixture / "proc/vmstat").write_text("oom_kill 0\n")
    nb = notebook(tmp_path / "big.ipynb", "x = bytearray(300 * 1024 * 1024)")
    env = env_for(tmp_path, WIZARD_SYSROOT=str(fixture))
    code, out, _ = wizard(tmp_path, nb, "--memory-limit", "100M", "--json", nb=nb, env=env)
    r = report(out)
    assert code == 1
    assert r["memory"]["limit_mode"] == "address space (RLIMIT_AS)"
    assert r["memory"]["cgroup"] is None
    assert r["exception"]["type"] == "MemoryError" and r["cell"] == 1
    assert r["verdict"]["kind"] == "memory"
    # The peak is sampled from /proc when there is no cgroup to ask.
    assert r["memory"]["peak_source"] == "resident memory of the process tree"
    assert r["memory"]["peak_bytes"] > MIB


# -- IPython syntax ------------------------------------------------------------------------

MAGICS = ("%time y = 6 * 7\n!echo hi from the shell\nprint('y is', y)", "print('second cell')")


def test_magics_and_shell_lines_run_through_ipython(tmp_path):
    need(importlib.util.find_spec("IPython") is not None, "IPython in the test interpreter")
    nb = notebook(tmp_path / "magic.ipynb", *MAGICS)
    code, out, _ = wizard(tmp_path, nb, "--python", sys.executable, nb=nb)
    assert code == 0, out
    assert "Wall time" in out and "hi from the shell\n" in out and "y is 42" in out
    assert "second cell" in out and "skipped" not in out


def test_without_ipython_those_lines_are_reported_and_skipped(tmp_path):
    venv = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    probe = subprocess.run([python, "-c", "import IPython"], capture_output=True, check=False)
    need(probe.returncode != 0, "a Python without IPython")
    nb = notebook(tmp_path / "magic.ipynb", *MAGICS)
    code, out, _ = wizard(tmp_path, nb, "--python", python, nb=nb)
    assert code == 0, out
    assert "line 2 skipped: !echo hi from the shell" in out
    assert "the statement ran without %time" in out
    assert "y is 42" in out and "second cell" in out and "\nhi from the shell\n" not in out
    assert f"IPython is not installed in {python}" in out

    code, out, _ = wizard(tmp_path, nb, "--python", python, "--json", nb=nb)
    r = report(out)
    assert r["python"] == str(python) and r["python_source"] == "--python"
    assert [(s["cell"], s["line"]) for s in r["skipped"]] == [(1, 1), (1, 2)]


def test_the_kernelspec_chooses_the_interpreter(tmp_path):
    # The notebook's kernelspec names an interpreter: the run uses it by default.
    spec = tmp_path / "jupyter" / "kernels" / "other"
    spec.mkdir(parents=True)
    real = os.path.realpath(sys.executable)
    argv = [real, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    nb = notebook(tmp_path / "k.ipynb", "import sys\nprint(sys.executable)", kernel="other")
    code, out, _ = wizard(tmp_path, nb, "--json", nb=nb)
    r = report(out)
    assert code == 0
    assert r["python"] == real and r["python_source"] == "kernelspec other"

    nb = notebook(tmp_path / "k2.ipynb", "pass", kernel="nosuchkernel")
    code, out, _ = wizard(tmp_path, nb, "--json", nb=nb)
    r = report(out)
    # The run's own interpreter, as it names itself: normalised, however pytest was started.
    assert r["python"] == os.path.abspath(sys.executable)
    assert r["python_source"] == "this Python; no kernelspec named nosuchkernel"


# -- options ---------------------------------------------------------------------------


def test_cells_selects_a_range(tmp_path):
    nb = notebook(
        tmp_path / "range.ipynb",
        "print('one')",
        "#md two",
        "print('three')",
        "print('four')",
        "raise SystemExit('five is never run')",
    )
    code, out, _ = wizard(tmp_path, nb, "--cells", "2-4", "--json", nb=nb)
    r = report(out)
    assert code == 0
    assert r["cells_run"] == [3, 4] and r["outcome"] == "finished"


def test_timeout_stops_a_stuck_cell_and_shows_where(tmp_path):
    nb = notebook(
        tmp_path / "slow.ipynb", "import time", "print('waiting', flush=True)\ntime.sleep(60)"
    )
    started = time.monotonic()
    code, out, _ = wizard(tmp_path, nb, "--timeout", "1", nb=nb)
    assert time.monotonic() - started < 30
    assert code == 1
    assert "How it ended: stopped at the time limit (1 s) in cell 2" in out
    assert "cell 2, line 2: time.sleep(60)" in out


def test_ctrl_c_stops_the_child_and_its_children(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    nb = notebook(
        tmp_path / "forever.ipynb",
        "import subprocess, time\n"
        "p = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)",
    )
    env = env_for(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", "run", str(nb)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a run started from a non-interactive shell inherits SIGINT ignored: undo that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        start_new_session=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert "ready" in line
        grandchild = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        out, err = proc.communicate(timeout=30)
    finally:
        try:  # the wizard, its kernel and whatever the kernel started
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 130, err
    assert "How it ended: interrupted in cell 1" in out
    assert "Traceback" not in err
    assert _state(grandchild) in ("gone", "Z")
    assert os.listdir(env["TMPDIR"]) == []


def test_processes_left_running_are_stopped_at_the_end(tmp_path):
    pidfile = tmp_path / "background.pid"
    nb = notebook(
        tmp_path / "bg.ipynb",
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))",
    )
    started = time.monotonic()
    code, out, _ = wizard(tmp_path, nb, nb=nb)
    assert time.monotonic() - started < 20
    assert code == 0
    assert "Stopped 1 process(es) the cells left running in the background" in out
    assert _state(int(pidfile.read_text())) in ("gone", "Z")


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# -- bad input: one line, exit 2 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.ipynb", None, "no such file"),
        ("notes.ipynb", "just some text\n", "not a notebook"),
        ("object.ipynb", '{"hello": "world"}', "not a Jupyter notebook"),
        ("broken.ipynb", '{"cells": [ {"cell_type": "code", ', "broken JSON at line 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, out, err = wizard(tmp_path, path, nb=path if content is not None else None)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("python -m wizard run: ") and expected in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(tmp_path):
    nb = notebook(tmp_path / "a.ipynb", "pass")
    for args in (
        ["--cells", "x"],
        ["--memory-limit", "lots"],
        ["--python", "/no/such/python"],
        ["--timeout", "soon"],
        ["--no-such-option"],
    ):
        code, out, err = wizard(tmp_path, nb, *args, nb=nb)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (args, err)


# -- pieces ----------------------------------------------------------------------------


def test_the_child_runner_parses_as_python_3_8():
    source = Path(run_exec.__file__).with_name("run_child.py").read_text()
    ast.parse(source, feature_version=(3, 8))
    assert "from wizard" not in source and "import wizard" not in source


def test_markers_split_across_reads_are_found():
    stream = run_markers.MarkerStream("tok")
    data = b"partial out\x1etok" + b'{"ev": "start", "cell": 2}\nmore \xc3'
    items = []
    for i in range(len(data)):  # one byte at a time: the worst split
        items.extend(stream.feed(data[i : i + 1]))
    items.extend(stream.feed(b"\xa9 end", final=True))
    text = "".join(x for k, x in items if k == "out")
    assert text == "partial outmore é end"
    assert [x for k, x in items if k == "ev"] == [{"ev": "start", "cell": 2}]


def test_faulthandler_reports_are_parsed():
    text = (
        "Fatal Python error: Segmentation fault\n\n"
        "Thread 0x00007f01 (most recent call first):\n"
        '  File "/x/threading.py", line 320 in wait\n\n'
        "Current thread 0x00007f00 (most recent call first):\n"
        '  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at\n'
        '  File "<cell 3>", line 2 in <module>\n'
        '  File "/w/run_child.py", line 200 in run_code\n\n'
        "Extension modules: numpy.core._multiarray_umath, _ctypes (total: 2)\n"
    )
    fault = run_markers.parse_fault(text)
    assert fault["headline"] == "Segmentation fault"
    assert [f["file"] for f in fault["frames"]][:2] == [
        "/usr/lib/python3.11/ctypes/__init__.py",
        "<cell 3>",
    ]
    assert fault["extension_modules"] == ["numpy.core._multiarray_umath", "_ctypes"]
    assert fault["threads"] == 2


def test_the_wizard_page_lists_the_run_exit_codes():
    from wizard.commands import run as cmd_run
    from wizard.diagnosis import docs_map

    page, _ = docs_map.LABELS["wizard-run"]
    text = (REPO / "docs" / f"{page}.rst").read_text()
    section = text.split(".. _wizard-run:", 1)[1].split("\n.. _", 1)[0]
    assert ".. wizard-options:: run" in section
    # the table is generated from the command's own EXIT_CODES (test_site_build checks the rows)
    assert ".. wizard-exit-codes:: run" in section
    assert set(cmd_run.EXIT_CODES) == {0, 1, 2, 130}


# -- what Jupyter would do with the same notebook ------------------------------------------


@pytest.mark.parametrize("call", ["import sys\nsys.exit(0)", "raise SystemExit(3)"])
def test_system_exit_in_a_cell_leaves_a_kernel_running(tmp_path, call):
    nb = notebook(tmp_path / "exits.ipynb", "x = 1", call, "print('after')")
    _, out, _ = wizard(tmp_path, nb, nb=nb)
    assert "In Jupyter the kernel lives on" in out
    assert "the cell shows SystemExit as an error" in out
    assert "In Jupyter the same call ends the kernel" not in out
    assert "after" not in out.split("How it ended")[0].split("── cell 3")[-1]


def test_os_exit_ends_the_kernel_in_jupyter_too(tmp_path):
    nb = notebook(tmp_path / "exits.ipynb", "import os\nos._exit(4)")
    code, out, _ = wizard(tmp_path, nb, nb=nb)
    assert code == 1
    assert "In Jupyter the same call ends the kernel" in out
    assert "kernel lives on" not in out


def test_a_fifo_as_the_notebook_is_one_line_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    code, out, err = wizard(tmp_path, fifo, timeout=30)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [
        f"python -m wizard run: {fifo}: a FIFO (named pipe), not a notebook file"
    ]
    code, _, err = wizard(tmp_path, "/dev/null", timeout=30)
    assert code == 2 and "/dev/null: a character device, not a notebook file" in err


INPUT_CELL = "name = input('your name? ')\nprint('hello', name)"


def test_input_without_a_terminal_says_the_notebook_asks_for_input(tmp_path):
    nb = notebook(tmp_path / "asks.ipynb", INPUT_CELL)
    code, out, _ = wizard(tmp_path, nb, nb=nb)
    assert code == 1
    assert "The notebook asks for input (input()) in cell 1" in out
    assert "Run it from a terminal to type the answer there" in out
    assert "the notebook fails outside Jupyter too" not in out


def test_input_on_a_terminal_is_passed_through(tmp_path):
    from test_tty import Terminal

    nb = notebook(tmp_path / "asks.ipynb", INPUT_CELL)
    term = Terminal("run", str(nb), env=env_for(tmp_path))
    try:
        term.expect("your name\\? ", timeout=60)
        term.type("Ada\n")
        term.expect("How it ended", timeout=60)
        code = term.finish(timeout=60)
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert code == 0, term.screen
    assert "hello Ada" in term.screen
    assert "How it ended: finished, every cell ran" in term.screen


@pytest.mark.parametrize("seconds", ["0.01"])
def test_a_timeout_while_the_child_starts_shows_no_runner_frames(tmp_path, seconds):
    nb = notebook(tmp_path / "quick.ipynb", "x = 1")
    code, out, err = wizard(tmp_path, nb, "--timeout", seconds, nb=nb)
    assert code == 1
    assert "Traceback" not in out + err
    assert "run_child.py" not in out + err and "<frozen " not in out + err
    assert "Fatal Python error" not in out + err
    assert f"How it ended: stopped at the time limit ({float(seconds):g} s)" in out
    # no Python is up and running a cell in 10 ms (in 0.2 s it may have finished)
    assert "while Python was still starting, before the first cell" in out
    assert "out-of-memory killer" not in out
