"""The kernel-wizard API obeys the server's Authorizer: a real Jupyter server with
``wizard.server_ext`` and an Authorizer that denies answers 403 on every endpoint and
method, and a denied ``POST halt-idle`` halts nothing."""

import http.client
import json
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
ENABLE = '--ServerApp.jpserver_extensions={"wizard.server_ext": True}'
# Every endpoint with the methods it serves.
ENDPOINTS = [
    ("GET", "api/kernel-wizard/deaths"),
    ("GET", "api/kernel-wizard/deaths?since=0&limit=5"),
    ("GET", "api/kernel-wizard/report"),
    ("POST", "api/kernel-wizard/halt-idle"),
    ("GET", "api/kernel-wizard/previous"),
]
# Methods none of them serves: never a 2xx, whatever the Authorizer says.
OTHER_METHODS = ("PUT", "PATCH", "DELETE")


def request(server, method, path, body=None):
    """``(status, body text)`` with the server's token (so only the Authorizer denies)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        headers = {"Authorization": f"token {server.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, "/" + path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def start(factory, tmp_path, authorizer):
    env = {
        "PYTHONPATH": os.pathsep.join([str(TESTS / "authz"), str(REPO)]),
        "WIZARD_DB": str(tmp_path / "history.sqlite3"),
    }
    return factory(
        extra_args=[ENABLE, f"--ServerApp.authorizer_class=deny_authorizers.{authorizer}"],
        env=env,
    )


def test_a_denying_authorizer_gets_403_everywhere_and_halts_nothing(
    jupyter_server_factory, tmp_path
):
    server = start(jupyter_server_factory, tmp_path, "DenyKernelWizard")
    assert "wizard.server_ext" in server.log()  # the extension is loaded and serving
    session = server.create_session("idle.ipynb")  # the server's own API is allowed
    kid = session["kernel"]["id"]
    server.execute(kid, "pass")  # up and idle

    for method, path in ENDPOINTS:
        body = json.dumps({"idle_seconds": 0}) if method == "POST" else None
        status, text = request(server, method, path, body)
        assert status == 403, f"{method} /{path}: HTTP {status} {text[:200]}"
        assert server.token not in text
    for method in OTHER_METHODS:
        for _, path in ENDPOINTS:
            status, _ = request(server, method, path, "{}")
            assert status in (403, 405), f"{method} /{path}: HTTP {status}"

    time.sleep(1.0)  # a halt that slipped through would have shut the kernel down by now
    assert [k["id"] for k in server.kernels()] == [kid]
    assert server.execute(kid, "print('still here')")["stdout"] == "still here\n"


def test_the_same_server_allowed_answers(jupyter_server_factory, tmp_path):
    # Control: with the default Authorizer the same requests are answered, so the 403s
    # above are the Authorizer's doing, not a missing route.
    env = {"PYTHONPATH": str(REPO), "WIZARD_DB": str(tmp_path / "history.sqlite3")}
    server = jupyter_server_factory(extra_args=[ENABLE], env=env)
    for method, path in ENDPOINTS[:2]:
        status, text = request(server, method, path)
        assert status == 200, f"{method} /{path}: HTTP {status} {text[:200]}"
        assert json.loads(text)["schema"].startswith("kernel-wizard")


def test_an_authorizer_denying_all_denies_the_api_too(jupyter_server_factory, tmp_path):
    server = start(jupyter_server_factory, tmp_path, "DenyAllButStatus")
    assert request(server, "GET", "api/kernels")[0] == 403  # it is in force
    for method, path in ENDPOINTS:
        body = "{}" if method == "POST" else None
        status, text = request(server, method, path, body)
        assert status == 403, f"{method} /{path}: HTTP {status} {text[:200]}"
