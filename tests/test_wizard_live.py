"""The wizard against a real Jupyter server with two notebooks, one holding 250 MB.

What a user sees: both kernels, each beside its notebook, with memory that matches
the system's; the server found and answering; no token or kernel key anywhere.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
HOLD = 250 * 1024 * 1024


def tree_rss(pid):
    import psutil

    proc = psutil.Process(pid)
    return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))


@pytest.fixture(scope="module")
def two_notebooks(jupyter_server):
    server = jupyter_server
    big = server.create_session("analysis/big.ipynb")
    small = server.create_session("small.ipynb")
    big_id, small_id = big["kernel"]["id"], small["kernel"]["id"]
    result = server.execute(
        big_id, f"hog = bytearray({HOLD})\nfor i in range(0, len(hog), 4096): hog[i] = 1"
    )
    assert result["status"] == "ok", result
    server.execute(small_id, "x = 1")
    return server, {big_id: "analysis/big.ipynb", small_id: "small.ipynb"}


def wizard(server, *args):
    env = dict(server.env, NO_COLOR="1", WIZARD_DOCS_URL="https://docs.example/kw/")
    return subprocess.run(
        [sys.executable, "-m", "wizard", "--no-input", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def test_kernels_listed_with_their_notebooks_and_memory(two_notebooks):
    server, notebooks = two_notebooks
    done = wizard(server, "--json")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    ours = {k["kernel_id"]: k for k in report["kernels"] if k["kernel_id"] in notebooks}
    assert set(ours) == set(notebooks)
    for kernel_id, path in notebooks.items():
        k = ours[kernel_id]
        assert k["notebook"].endswith(path), k
        assert k["kernel_name"] == "python3"
        assert k["pid"] == server.kernel_pid(kernel_id)
        assert k["execution_state"] in ("idle", "busy", "starting")
        real = tree_rss(k["pid"])
        assert abs(k["rss_bytes"] - real) <= 0.10 * real, (k["rss_bytes"], real)
    big_id = next(i for i, p in notebooks.items() if "big" in p)
    assert ours[big_id]["rss_bytes"] >= HOLD
    # sorted by memory: the big notebook comes before the small one
    order = [k["kernel_id"] for k in report["kernels"]]
    assert order.index(big_id) < order.index(next(i for i in notebooks if i != big_id))

    servers = [s for s in report["servers"] if s["pid"] == server.pid]
    assert servers and servers[0]["reachable"] is True
    assert "token" not in servers[0]["url"]


def test_text_report_shows_each_notebook_beside_its_kernel(two_notebooks):
    server, notebooks = two_notebooks
    done = wizard(server)
    lines = done.stdout.splitlines()
    for kernel_id, path in notebooks.items():
        pid = str(server.kernel_pid(kernel_id))
        row = [line for line in lines if line.split()[:1] == [pid]]
        assert row and row[0].rstrip().endswith(path), done.stdout
    assert "Jupyter servers: 1 running, 1 answering" in done.stdout


def test_no_secret_in_any_output(two_notebooks):
    server, notebooks = two_notebooks
    secrets = [server.token]
    for kernel_id in notebooks:
        conn = json.loads(server.connection_file(kernel_id).read_text())
        secrets.append(conn["key"])
    for args in ([], ["-v"], ["--json"], ["--json", "-v"], ["--banner", "SIGKILL", "-v"]):
        done = wizard(server, *args)
        for secret in secrets:
            assert secret not in done.stdout, args
            assert secret not in done.stderr, args
