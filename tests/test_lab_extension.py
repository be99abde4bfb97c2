"""The JupyterLab / Notebook 7 plugin and its REST API, for real.

A Jupyter server with JupyterLab and Notebook 7 runs inside a child memory cgroup
with wizard.server_ext; headless Chromium (Debian's) opens notebooks in it. A cell
that allocates past the limit is OOM-killed and the notification names the notebook,
the out-of-memory killer, the memory and the limit, with a link to the site's memory
section; "Halt idle kernels" lists what it would do in a dialog and, once confirmed,
halts this server's idle kernel, never a busy one nor another server's; a segfault
gives SIGSEGV; a restart from the Kernel menu gives nothing. The API refuses a request
without the token and never answers with the token or a kernel key. Without the
server extension the page is silent. The committed build is checked to be current.
"""

import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, need

from wizard.diagnosis import docs_map
from wizard.diagnosis.deathtext import cause_line
from wizard.server import api as server_api

LABEXT = ROOT / "labextension"
sys.path.insert(0, str(LABEXT))
import build as labbuild  # noqa: E402  (labextension/build.py)

ENABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": True}'
DISABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": False}'
LIMIT = 400 << 20
HOG = "hog = [b'x' * (10 << 20) for _ in range(150)]"
SEGFAULT = "import ctypes; ctypes.string_at(0)"
BUSY = "import time; time.sleep(600)"
SCREENSHOT = ROOT / "docs" / "img" / "lab-notification.png"
NOTIFY_TIMEOUT = 60.0  # a wait for state; how fast is benchmarks/bench_lab_notify.py's
HALT_AFTER = 5  # --KernelWizard.halt_idle_after for the browser test
CHROMIUM = "/usr/bin/chromium"


# ---------------------------------------------------------------------------
# The committed build


def test_prebuilt_is_current():
    """The hash of the plugin's sources recorded at build time matches them."""
    assert (LABEXT / "prebuilt" / "package.json").is_file()
    assert labbuild.recorded_hash() == labbuild.source_hash(), (
        "labextension/ changed without a rebuild: run python labextension/build.py"
    )


def test_rebuild_gives_the_committed_build(tmp_path):
    """Built again from the sources with Node.js, the output is the committed one."""
    need(shutil.which("node") and shutil.which("npm"), "Node.js and npm (apt-get install nodejs)")
    need(importlib.util.find_spec("jupyterlab"), "jupyterlab (pip install jupyterlab)")
    if not (LABEXT / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LABEXT, check=True)
    work = tmp_path / "labextension"

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    # A full copy (hard links where it can): webpack's module ids depend on the paths.
    shutil.copytree(
        LABEXT,
        work,
        symlinks=True,
        copy_function=link_or_copy,
        ignore=lambda d, names: (
            [n for n in names if n in ("prebuilt", "lib", "tsconfig.tsbuildinfo")]
            if Path(d) == LABEXT
            else []
        ),
    )
    error = labbuild.build(work)
    assert error is None, error
    built, committed = _tree(work / "prebuilt"), _tree(LABEXT / "prebuilt")
    assert sorted(built) == sorted(committed)
    assert [n for n in built if built[n] != committed[n]] == []


def _tree(d):
    """``{name: bytes}`` of a build, with the container's own module id and file hash
    (which depend on the absolute path of the folder it was built in) made neutral."""
    out = {}
    for p in sorted(d.rglob("*")):
        if not p.is_file():
            continue
        name, data = p.relative_to(d).as_posix(), p.read_bytes()
        if name.startswith("static/remoteEntry."):
            name = "static/remoteEntry.js"
            data = re.sub(
                rb"^(var _JUPYTERLAB;\(\(\)=>\{\"use strict\";var e=\{)\d+", rb"\1N", data
            )
            data = re.sub(rb"let n=r\(\d+\);\(_JUPYTERLAB=", b"let n=r(N);(_JUPYTERLAB=", data)
        if name == "package.json":
            data = re.sub(rb"remoteEntry\.[0-9a-f]+\.js", b"remoteEntry.js", data)
        out[name] = data
    return out


def test_installed_with_the_package():
    """pip install puts the plugin where JupyterLab finds it and enables the server part."""
    share = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "kernel-wizard"
    need(share.is_dir(), f"the package installed into {sys.prefix} (pip install .)")
    assert (share / "package.json").is_file() and (share / "install.json").is_file()
    conf = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "kernel_wizard.json"
    assert json.loads(conf.read_text())["ServerApp"]["jpserver_extensions"] == {
        "wizard.server_ext": True
    }
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = out.stdout + out.stderr
    assert "kernel-wizard v0.1.0" in text and "enabled" in text, text


# ---------------------------------------------------------------------------
# The one line, without a server


@pytest.mark.parametrize(
    ("death", "line", "label"),
    [
        (
            {"cause": "oom-kill", "notebook": "/h/big.ipynb", "rss_bytes": 1.9 * 2**30}
            | {"limit_bytes": 2 * 2**30},
            "big.ipynb's kernel was killed by the out-of-memory killer holding 1.9 GiB of "
            "its 2.0 GiB limit",
            "kernel-terminated-memory",
        ),
        (
            {"cause": "signal", "signal": "SIGSEGV", "notebook": "/h/c.ipynb"},
            "c.ipynb's kernel died of SIGSEGV in native code",
            "kernel-terminated-eliminate-jupyter",
        ),
        (
            {"cause": "exit", "exit_code": 1, "notebook": "x.ipynb", "time": 10, "started": 9},
            "x.ipynb's kernel could not start: exited with code 1",
            "kernel-cannot-start",
        ),
        (
            {"cause": "unknown", "notebook": None},
            "A kernel died, and how could not be told: it left no exit status or kernel-log record",
            "kernel-terminated-other",
        ),
    ],
)
def test_the_one_line(death, line, label):
    assert cause_line(death) == (line, label)
    assert label in docs_map.LABELS


def test_asked_for_is_not_announced():
    got = server_api.death_answer({"cause": "shutdown", "notebook": "a.ipynb", "time": 1})
    assert got["notify"] is False


@pytest.mark.parametrize(
    "args",
    [{"since": "yesterday"}, {"since": "nan"}, {"limit": "-1"}, {"kernel_id": "../../etc"}],
)
def test_bad_query_is_one_line(args):
    with pytest.raises(server_api.BadRequest) as info:
        server_api.parse_deaths_query(args, time.time())
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# A real server


def _get(server, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def _kernel_key(server, kernel_id):
    return json.loads(server.connection_file(kernel_id).read_text())["key"]


@pytest.mark.server
def test_api_needs_the_token_and_never_tells_it(jupyter_server_factory, tmp_path):
    server = jupyter_server_factory(extra_args=[ENABLE], env={"WIZARD_DB": str(tmp_path / "h.db")})
    kid = server.create_session("a.ipynb")["kernel"]["id"]
    key = _kernel_key(server, kid)
    auth = {"Authorization": f"token {server.token}"}
    for path in ("/api/kernel-wizard/deaths", "/api/kernel-wizard/report"):
        status, _ = _get(server, path)
        assert status == 403, path
        status, _ = _get(server, path, {"Authorization": "token wrong"})
        assert status == 403, path
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/api/kernel-wizard/halt-idle", body="{}")
    assert conn.getresponse().status == 403
    conn.close()
    status, body = _get(server, "/api/kernel-wizard/deaths?since=0", auth)
    assert status == 200 and json.loads(body)["recording"] is True
    status, report = _get(server, "/api/kernel-wizard/report", auth)
    assert status == 200 and json.loads(report)["text"]
    status, bad = _get(server, "/api/kernel-wizard/deaths?since=soon", auth)
    assert status == 400 and json.loads(bad)["error"] == "since must be a number, not 'soon'"
    for text in (body, report, bad, server.log()):
        assert server.token not in text and key not in text
    assert not ours_in_tracebacks(server.log())


# ---------------------------------------------------------------------------
# In the browser


def _notebook(path, code):
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "c1",
        "metadata": {},
        "outputs": [],
        "source": code,
    }
    nb = {
        "cells": [cell],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@contextlib.contextmanager
def browser_context(tmp_path):
    need(os.access(CHROMIUM, os.X_OK), f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright package (pip install playwright)")
    from test_site_browser import CHROMIUM_ARGS

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
            color_scheme="light",
        )
        context.set_default_timeout(60_000)
        # Nothing leaves the machine. A pattern, not a Python callable: a callable would
        # hold every request of the page while this process waits.
        context.route(
            re.compile(r"^(?!http://127\.0\.0\.1[:/]|data:|blob:|about:)"),
            lambda route: route.abort(),
        )
        try:
            yield context
        finally:
            context.close()


# Notebook 7.6's own page raises this on load here, with the kernel-wizard extension
# disabled too (checked with `jupyter labextension disable kernel-wizard`): not ours.
NOTEBOOK7_OWN = "Cannot read properties of undefined (reading 'schema')"


def _ours(errors):
    return [e for e in errors if e != NOTEBOOK7_OWN]


def _open(context, server, path, errors, ui="lab/tree"):
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}{ui}/{path}?token={server.token}", wait_until="load")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    return page


def _idle(server, path):
    """Wait until the notebook's kernel answers a request: it is up and not running code.

    The server's own record of a kernel's state lags after it restarted the kernel (it
    says "starting" until some client's first request), so the kernel itself is asked.
    """
    from jupyter_client import BlockingKernelClient

    def kernel_id():
        for s in server.sessions():
            if s["path"] == path and s.get("kernel"):
                return s["kernel"]["id"]
        return None

    def answers():
        kid = kernel_id()
        if kid is None:
            return False
        # read anew each time: a restart gives the kernel new ports in the same file
        kc = BlockingKernelClient(connection_file=str(server.connection_file(kid)))
        try:
            kc.load_connection_file()
            kc.start_channels()
            kc.wait_for_ready(timeout=10)  # a kernel_info round trip
            return True
        except (RuntimeError, OSError, ValueError):
            return False
        finally:
            kc.stop_channels()

    # a kernel running code answers no kernel_info until the code is done: an answer
    # means it is up and idle (the server's own record of its state lags behind)
    _wait(answers, timeout=120.0)


def _run_first_cell(page):
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")  # command mode: the keys run the cell, not edit it
    page.keyboard.press("Control+Enter")


def _toast(page, text, timeout):
    toast = page.locator(".Toastify__toast", has_text=text)
    toast.first.wait_for(timeout=timeout * 1000)
    return toast.first


def _dismiss_dialogs(page):
    with contextlib.suppress(Exception):
        page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=3000)


@pytest.mark.server
@pytest.mark.oom
@pytest.mark.browser
def test_lab_names_the_cause(tmp_path):
    import jupyter_fixtures
    from cgroups import child_cgroup

    jupyter_fixtures.need_jupyter()
    need(importlib.util.find_spec("jupyterlab"), "jupyterlab (pip install jupyterlab)")
    db = tmp_path / "history.sqlite3"
    server = jupyter_fixtures.JupyterServer(
        tmp_path / "server",
        extra_args=[ENABLE, f"--KernelWizard.halt_idle_after={HALT_AFTER}"],
        env={"WIZARD_DB": str(db), "WIZARD_WATCH_INTERVAL": "0.5"},
    )
    # another server of the same user, in the same runtime dir, with an idle kernel
    other = jupyter_fixtures.JupyterServer(tmp_path / "other")
    other.runtime_dir = server.runtime_dir
    other.env["JUPYTER_RUNTIME_DIR"] = str(server.runtime_dir)
    errors = []
    with child_cgroup(LIMIT, prefix="wizard-lab") as cg:
        try:
            server.root_dir.mkdir(parents=True)
            _notebook(server.root_dir / "big.ipynb", HOG)
            server.start()
            cg.add(server.pid)  # before any kernel starts: they are born in the cgroup
            other.start()
            theirs = other.create_session("idle.ipynb")["kernel"]["id"]
            with browser_context(tmp_path) as context:
                page = _open(context, server, "big.ipynb", errors)
                _idle(server, "big.ipynb")
                load_errors = list(errors)
                _run_first_cell(page)
                kid = server.sessions()[0]["kernel"]["id"]
                pid = server.kernel_pid(kid)
                while _alive(pid):
                    time.sleep(0.05)
                toast = _toast(page, "out-of-memory", NOTIFY_TIMEOUT)
                text = toast.inner_text()
                assert "big.ipynb's kernel was killed by the out-of-memory killer holding" in text
                assert "of its 400 MiB limit" in text, text
                link = toast.locator(".jp-toast-button.jp-mod-link")
                href = link.get_attribute("title")
                assert href == docs_map.url_for("kernel-terminated-memory"), href
                _dismiss_dialogs(page)
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                toast.screenshot(path=str(SCREENSHOT))

                # An idle tab asks nothing: deaths come on the event stream
                asked = []
                page.on("request", lambda r: "/api/kernel-wizard" in r.url and asked.append(r.url))
                page.wait_for_timeout(3000)
                assert asked == [], asked

                # Halt idle kernels: a dialog first; then this server's idle kernel goes,
                # a busy one stays, and so does the other server's idle kernel
                idle = server.create_session("idle.ipynb")["kernel"]["id"]
                busy = server.create_session("busy.ipynb")["kernel"]["id"]
                _fire(server, idle, "x = 1")
                _fire(server, busy, BUSY)
                _wait(lambda: _state(server, busy) == "busy" and _state(server, idle) == "idle")
                time.sleep(HALT_AFTER + 1)
                toast.get_by_text("Halt idle kernels").click()
                plan = page.locator(".jp-Dialog .kernel-wizard-halt-plan")
                plan.wait_for()
                halt_list = plan.locator(".kernel-wizard-halt-list li")
                assert halt_list.count() == 1, plan.inner_text()
                assert halt_list.first.inner_text().startswith("idle.ipynb: "), plan.inner_text()
                assert "idle for" in halt_list.first.inner_text()
                assert "freeing about" in plan.inner_text()
                left = plan.locator(".kernel-wizard-left-list").inner_text()
                assert "busy.ipynb: busy running code" in left, left
                assert "big.ipynb: the notebook you are looking at" in left, left
                assert idle in {k["id"] for k in server.kernels()}  # nothing happened yet
                page.locator(".jp-Dialog .jp-mod-accept").click()
                _toast(page, "Halted 1 idle kernel", 60)
                ids = {k["id"] for k in server.kernels()}
                assert idle not in ids and busy in ids and kid in ids, ids
                assert theirs in {k["id"] for k in other.kernels()}
                assert _alive(other.kernel_pid(theirs))
                server.delete_kernel(busy)

                # A segfault, then a restart asked for from the Kernel menu
                _idle(server, "big.ipynb")
                page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
                page.keyboard.press("Control+a")
                page.keyboard.type(SEGFAULT)
                pid = server.kernel_pid(kid)
                _run_first_cell(page)
                while _alive(pid):
                    time.sleep(0.05)
                toast = _toast(page, "SIGSEGV", NOTIFY_TIMEOUT)
                assert "big.ipynb's kernel died of SIGSEGV in native code" in toast.inner_text()
                href = toast.locator(".jp-toast-button.jp-mod-link").get_attribute("title")
                assert href == docs_map.url_for("kernel-terminated-eliminate-jupyter")
                _dismiss_dialogs(page)
                # Details: the evidence as wizard -v gives it
                toast.get_by_text("Details").click()
                details = page.locator(".jp-Dialog .kernel-wizard-details")
                details.wait_for()
                page.wait_for_function(
                    "() => !document.querySelector('.kernel-wizard-details')"
                    ".textContent.includes('Running python -m wizard -v')"
                )
                assert "Memory" in details.inner_text() or "memory" in details.inner_text()
                page.locator(".jp-Dialog .jp-mod-accept").click()

                _idle(server, "big.ipynb")
                deaths = page.locator(".Toastify__toast", has_text="big.ipynb's kernel")
                before = deaths.count()
                pid = server.kernel_pid(kid)
                page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
                page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
                page.locator(".jp-Dialog .jp-mod-accept").click()
                _wait(lambda: _recorded(db, pid, "shutdown"))
                page.wait_for_timeout(2000)  # an event would have come by now
                assert deaths.count() <= before  # no new one (older ones may have closed)
                assert page.locator(".Toastify__toast", has_text="on request").count() == 0
                page.close()
            log = server.log()
        finally:
            server.stop()
            other.stop()
    assert load_errors == [], load_errors
    # A kernel killed mid-cell may print its own traceback into the server's log; none
    # may come from the extension.
    assert not ours_in_tracebacks(log), log


@pytest.mark.server
@pytest.mark.browser
def test_notebook7_names_the_cause(jupyter_server_factory, tmp_path):
    need(importlib.util.find_spec("notebook"), "notebook 7 (pip install notebook)")
    server = jupyter_server_factory(extra_args=[ENABLE], env={"WIZARD_DB": str(tmp_path / "h.db")})
    _notebook(server.root_dir / "crash.ipynb", SEGFAULT)
    errors = []
    with browser_context(tmp_path) as context:
        page = _open(context, server, "crash.ipynb", errors, ui="notebooks")
        _idle(server, "crash.ipynb")
        load_errors = list(errors)
        _run_first_cell(page)
        toast = _toast(page, "SIGSEGV", 20)
        assert "crash.ipynb's kernel died of SIGSEGV in native code" in toast.inner_text()
    assert _ours(load_errors) == [], load_errors


@pytest.mark.server
@pytest.mark.browser
@pytest.mark.parametrize("ui", ["lab/tree", "notebooks"])
def test_silent_without_the_server_extension(jupyter_server_factory, tmp_path, ui):
    need(importlib.util.find_spec("notebook"), "notebook 7 (pip install notebook)")
    server = jupyter_server_factory(extra_args=[DISABLE])
    _notebook(server.root_dir / "plain.ipynb", "1 + 1")
    errors, asked = [], []
    with browser_context(tmp_path) as context:
        page = _open(context, server, "plain.ipynb", errors, ui=ui)
        page.on("request", lambda r: "kernel-wizard" in r.url and asked.append(r.url))
        _idle(server, "plain.ipynb")
        _run_first_cell(page)
        page.locator(".jp-OutputArea-output", has_text="2").first.wait_for()
    assert asked == []
    assert (errors if ui == "lab/tree" else _ours(errors)) == [], errors


# ---------------------------------------------------------------------------
# helpers


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _wait(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _state(server, kid):
    return next((k["execution_state"] for k in server.kernels() if k["id"] == kid), None)


def _ready_client(server, kid, tries=5):
    """A client of a kernel that answered kernel_info. Under load, jupyter_client's
    1-second heartbeat check can call a live kernel dead: ask again while it runs."""
    from jupyter_client import BlockingKernelClient

    for attempt in range(tries):
        kc = BlockingKernelClient(connection_file=str(server.connection_file(kid)))
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            return kc
        except RuntimeError:
            kc.stop_channels()
            if attempt == tries - 1 or not _alive(server.kernel_pid(kid)):
                raise
    raise AssertionError("unreachable")


def _fire(server, kid, code):
    kc = _ready_client(server, kid)
    try:
        msg_id = kc.execute(code)
        while True:  # the kernel took it: it said it is busy with this request
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
                break
    finally:
        kc.stop_channels()


def ours_in_tracebacks(log):
    """The tracebacks in a server log that pass through the wizard's own code."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        frames = []
        for line in block.split("\n")[1:]:
            if not line.startswith(" "):
                break  # the exception's own line ends the stack
            frames.append(line)
        if any("/wizard/" in f for f in frames):
            found.append("\n".join(frames))
    return found


def _recorded(db, pid, cause):
    from wizard.system import historydb

    return any(
        d["pid"] == pid and d["cause"] == cause
        for d in historydb.recent_deaths(str(db), since_seconds=600)
    )


@pytest.mark.server
@pytest.mark.oom
@pytest.mark.browser
def test_notify_benchmark_reports_its_figures():
    """benchmarks/bench_lab_notify.py runs (one kill, a short idle time) and says all."""
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_lab_notify.py", "--kills", "1", "--idle-seconds", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"over 1 OOM kills: median \d+ ms \(target <= 500\), worst \d+ ms", out), out
    assert re.search(r"requests the plugin sent from an idle tab in 3 s: 0 \(target 0\)", out), out
