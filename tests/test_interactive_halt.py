"""The walk-through on a terminal, against a real server: memory is the cause, and it offers
to shut down the idle kernel that holds memory, sparing the one that is busy."""

import io
import os
import re
import threading
import time

import pytest
from test_cli import TTYStringIO

from wizard.base import fmt, thresholds
from wizard.commands import cli
from wizard.report.context import Context

pytestmark = pytest.mark.server


IDLE = 1  # seconds: the idle threshold of this test


def ready(kernels, idle, busy, threshold):
    """Whether /api/kernels shows ``busy`` busy and ``idle`` inactive over ``threshold``."""
    by_id = {k["id"]: k for k in kernels}
    if by_id.get(busy, {}).get("execution_state") != "busy":
        return False
    stamp = fmt.parse_iso(by_id.get(idle, {}).get("last_activity"))
    return stamp is not None and time.time() - stamp > threshold


def test_walk_through_offers_to_halt_the_idle_kernel(jupyter_server_factory, monkeypatch):
    server = jupyter_server_factory()
    idle = server.create_session("idle.ipynb")["kernel"]["id"]
    busy = server.create_session("busy.ipynb")["kernel"]["id"]
    assert (
        server.execute(idle, "hog = bytearray(120 * 2**20)\nhog[::4096] = b'x' * len(hog[::4096])")[
            "status"
        ]
        == "ok"
    )
    worker = threading.Thread(target=server.execute, args=(busy, "import time; time.sleep(20)"))
    worker.start()
    # the server reports the busy kernel busy, and the idle one's last activity as older
    # than the idle threshold
    end = time.monotonic() + 30
    while not ready(server.kernels(), idle, busy, IDLE):
        assert time.monotonic() < end, server.kernels()
        time.sleep(0.1)

    # Thresholds scaled down so the test needs no quarter of an hour.
    monkeypatch.setattr(thresholds, "IDLE_SECONDS", IDLE)
    monkeypatch.setattr(thresholds, "IDLE_MIN_BYTES", 50 * 2**20)
    for k in list(os.environ):
        if k.startswith(("JUPYTER", "WIZARD")):
            monkeypatch.delenv(k, raising=False)
    for k, v in server.env.items():
        monkeypatch.setenv(k, v)

    # 1: the SIGKILL wording; n: not stopped on purpose; y: shut the idle ones down;
    # y: confirm the list; n: no need to look further
    stdin = TTYStringIO("1\nn\ny\ny\nn\n")
    out = TTYStringIO()
    ctx = Context(stdin=stdin, stdout=out, stderr=io.StringIO(), environ={"NO_COLOR": "1"})
    code = cli.run([], ctx)
    text = out.getvalue()
    try:
        assert "Step 3 of 4: Is it memory?" in text
        assert "idle.ipynb" in text
        assert "Shut them down now" in text
        left = {k["id"] for k in server.kernels()}
        assert idle not in left, text
        assert busy in left, text
        # the idle kernel held 120 MiB: at least 100 MiB came back, as the summary says
        m = re.search(r"Halted 1 of 1 kernel\(s\); ([\d.]+) (MiB|GiB) freed\.", text)
        assert m, text
        assert float(m.group(1)) * (1024 if m.group(2) == "GiB" else 1) >= 100, text
        assert "idle.ipynb" in text.split("Shut them down now", 1)[1]
        assert "busy.ipynb" not in text.split("Will halt", 1)[-1].split("Halted", 1)[0]
        assert server.token not in text
        assert code == 1  # memory trouble was found
    finally:
        worker.join(timeout=30)
