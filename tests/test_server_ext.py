"""The server extension ``wizard.server_ext``, for real: inside a Jupyter server in a small
cgroup it records the exact ending of each kernel (SIGSEGV from the returncode), a
shutdown through the API as a shutdown, and an OOM kill as such; beside a running
``watch`` it only adds the exit statuses to the same rows.
"""

import time

import pytest
from test_watch import (
    HOG,
    LIMIT,
    SEGFAULT,
    Scene,
    start_watch,
    stop,
    wait_for_deaths,
    wait_for_lock,
)

from wizard.diagnosis import deathtext
from wizard.system import recorder_lock

# The line the docs give, as the server's command line takes it.
ENABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": True}'
CONFIG_LINE = 'c.ServerApp.jpserver_extensions = {"wizard.server_ext": True}\n'


def test_extension_points():
    from wizard import server_ext

    assert server_ext._jupyter_server_extension_points() == [{"module": "wizard.server_ext"}]


@pytest.mark.server
@pytest.mark.oom
def test_extension_records_exact_endings(tmp_path):
    db = tmp_path / "history.sqlite3"
    env = {"WIZARD_DB": str(db), "WIZARD_WATCH_INTERVAL": "0.5"}
    with Scene(tmp_path, extra_args=[ENABLE], env=env) as scene:
        status = recorder_lock.recorder_status(str(db))
        assert status["running"] and status["pid"] == scene.server.pid  # it samples too
        assert status["where"] == "inside a Jupyter server (wizard.server_ext)"
        ks = scene.open("crash.ipynb", "done.ipynb", "big.ipynb")
        pids = {name: k["pid"] for name, k in ks.items()}
        time.sleep(1.2)
        scene.fire("crash.ipynb", SEGFAULT)
        scene.fire("big.ipynb", HOG)
        scene.server.delete_kernel(ks["done.ipynb"]["id"])
        got = wait_for_deaths(
            db,
            {
                pids["crash.ipynb"]: lambda d: d["exact"],
                pids["done.ipynb"]: lambda d: d["exact"],
                pids["big.ipynb"]: lambda d: d["exact"] and d["cause"] == "oom-kill",
            },
        )
        log = scene.server.log()

    crash = got[pids["crash.ipynb"]]
    assert (crash["cause"], crash["signal"]) == ("signal", "SIGSEGV"), crash
    assert crash["detail"] == "exit status from the server"
    assert crash["notebook"].endswith("/crash.ipynb")
    assert crash["kernel_id"] == ks["crash.ipynb"]["id"]
    assert deathtext.describe(crash).endswith("; killed by SIGSEGV")

    done = got[pids["done.ipynb"]]
    assert done["cause"] == "shutdown", done
    assert done["notebook"].endswith("/done.ipynb")

    big = got[pids["big.ipynb"]]
    assert (big["cause"], big["signal"]) == ("oom-kill", "SIGKILL"), big
    assert big["limit_bytes"] == LIMIT
    assert big["rss_bytes"] > 150 << 20
    assert len(big["samples"]) >= 2  # sampled inside the server

    assert "wizard.server_ext: recording kernel deaths into" in log
    assert "Traceback" not in log


@pytest.mark.server
def test_extension_beside_a_running_watch_adds_exit_statuses(tmp_path):
    """Enabled from a config file; a `watch` holds the database: the extension does not
    sample, and its exact status lands in the row the watch made."""
    db = tmp_path / "history.sqlite3"
    config = tmp_path / "server" / "config"
    config.mkdir(parents=True)
    (config / "jupyter_server_config.py").write_text(CONFIG_LINE)
    env = {"WIZARD_DB": str(db), "WIZARD_WATCH_INTERVAL": "0.5"}
    scene = Scene(tmp_path, env=env)
    watch = start_watch(db, "--interval", "0.5", env=scene.server.env)
    try:
        wait_for_lock(db, watch)
        with scene:
            ks = scene.open("crash.ipynb")
            pid = ks["crash.ipynb"]["pid"]
            time.sleep(1.2)
            scene.fire("crash.ipynb", SEGFAULT)
            got = wait_for_deaths(db, {pid: lambda d: d["exact"] and "watch" in d["recorded_by"]})
            status = recorder_lock.recorder_status(str(db))
            log = scene.server.log()
    finally:
        stop(watch)
    assert status["pid"] == watch.pid  # the watch kept sampling
    d = got[pid]
    assert (d["cause"], d["signal"]) == ("signal", "SIGSEGV")
    assert d["recorded_by"] == "server,watch"
    assert d["notebook"].endswith("/crash.ipynb") and d["samples"]
    assert "wizard.server_ext: recording kernel deaths into" in log


def _ts_interfaces():
    import re

    from conftest import ROOT

    text = (ROOT / "labextension" / "src" / "shapes.ts").read_text()
    out = {}
    for m in re.finditer(r"interface (\w+)(?: extends (\w+))? \{(.*?)\n\}", text, re.S):
        fields = set(re.findall(r"^\s+(\w+): ", m.group(3), re.M))
        out[m.group(1)] = fields | out.get(m.group(2), set())
    return out


def test_the_plugin_and_the_server_name_the_same_fields():

    from wizard.server import events, shapes

    ts = _ts_interfaces()
    for py, name in (
        (shapes.OwnKernel, "IOwnKernel"),
        (shapes.LeftKernel, "ILeftKernel"),
        (shapes.HaltPlan, "IHaltPlan"),
        (shapes.HaltAnswer, "IHaltAnswer"),
        (shapes.PreviousAnswer, "IPreviousServer"),
    ):
        assert set(py.__annotations__) == ts[name], name
    assert set(events.DEATH_FIELDS) == ts["IDeath"]


def test_death_answer_has_every_event_field():
    from wizard.server import api, events

    class App:
        root_dir = "/home/u/work"

    d = {"cause": "exit", "exit_code": 3, "notebook": "/home/u/work/a/b.ipynb", "time": 100.0}
    d["started"] = 10.0
    got = api.event_data(App(), d)
    assert set(got) == set(events.DEATH_FIELDS)
    assert got["notebook"] == "a/b.ipynb"
    # it ran, then exited: not "a kernel that cannot start"
    assert got["label"] != "kernel-cannot-start" and got["ran_cells"] is True


def test_options_are_typed_validated_and_listed():
    from traitlets.config import Config

    from wizard.server import config

    names = {o[0] for o in config.options()}
    assert names == {"docs_url", "interval", "db", "halt_idle_after", "metrics"}
    assert all(o[3] for o in config.options())  # every option has its help

    import logging

    from traitlets.config import LoggingConfigurable

    lines = []
    log = logging.getLogger("test-kernel-wizard-options")
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    log.addHandler(handler)
    app = LoggingConfigurable(
        config=Config({"KernelWizard": {"halt_idle_after": 0.0, "interval": 1.0}}), log=log
    )
    conf = config.load(app)
    assert conf.halt_idle_after == 60.0 and conf.interval == 1.0
    assert lines == [
        "wizard.server_ext: KernelWizard.halt_idle_after must be at least 5 s; "
        "using the defaults for it"
    ]


def test_the_site_table_is_the_class():
    import sys

    from conftest import ROOT

    from wizard.server import config

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    import kernel_wizard_options

    site = {(n, k, d, h) for n, k, d, h in kernel_wizard_options.read_options()}
    assert site == set(config.options())
