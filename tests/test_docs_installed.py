"""The site inside the package: the wheel the site offers, and the links to the copy it holds.

The docs build makes the wheel (hatchling, from pyproject.toml) and puts the built site
into it. Installed, with no public docs URL set, every link the wizard prints is a
``file://`` URL of that copy, and each opens a page with its anchor. A real Jupyter
server serves the same copy under ``BASE_URL/kernel-wizard/docs/`` to a logged-in user
only (``wizard/server/docs_site.py``; here wired up by a small extension of the test's
own, the way the server extension adds it).
"""

import base64
import csv
import hashlib
import http.client
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import ROOT

from wizard.diagnosis import docs_map, messages, signals

sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import wizard_wheel

WHEEL, SDIST = wizard_wheel.file_names(ROOT)


@pytest.fixture(scope="module")
def wheel(built_site):
    path = built_site / WHEEL
    assert path.is_file(), f"the docs build wrote no {WHEEL}"
    return path


def test_the_site_offers_the_wheel_and_the_source(built_site, wheel):
    page = (built_site / f"{docs_map.LABELS['wizard'][0]}.html").read_text(encoding="utf-8")
    assert f'href="{WHEEL}"' in page and f'href="{SDIST}"' in page
    assert f"python -m pip install SITE_URL/{WHEEL}" in re.sub(r"<[^>]+>", "", page)
    assert (built_site / SDIST).is_file()
    assert "pip install kernel-wizard" not in page  # not on PyPI


def test_the_wheel_holds_the_site_and_a_true_record(built_site, wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        for name, digest, size in rows:
            if name == record_name:
                continue
            data = zf.read(name)
            raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={raw}" and int(size) == len(data), name
        assert {r[0] for r in rows} == set(names)
        for page in ("index.html", f"{docs_map.LABELS['kernel-signals'][0]}.html", "wizard.pyz"):
            assert f"wizard/docs_html/{page}" in names
        assert zf.read("wizard/docs_html/index.html") == (built_site / "index.html").read_bytes()
        assert not [n for n in names if n.endswith(".whl") or "/.doctrees/" in n]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The site's wheel installed into a folder of its own (no dependencies fetched)."""
    target = tmp_path_factory.mktemp("site-wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def wizard_output(installed, *args):
    env = {k: v for k, v in os.environ.items() if k != "WIZARD_DOCS_URL"}
    env["PYTHONPATH"] = str(installed)
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", "--no-input", *args],
        cwd=str(installed.parent),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


URL = re.compile(r"file://[^\s\"'<>]+")


@pytest.mark.parametrize(
    "args",
    [["--banner", "Killed"], ["--banner", "Segmentation fault (core dumped)"], ["--json"]],
    ids=["killed", "segfault", "json"],
)
def test_every_link_the_wizard_prints_opens_in_the_installed_copy(installed, args):
    out = wizard_output(installed, *args)
    links = set(URL.findall(out))
    assert links, out
    site = installed / "wizard" / "docs_html"
    for link in links:
        parts = urlsplit(link.rstrip(".,)"))
        path = Path(unquote(parts.path))
        assert path.is_relative_to(site), link
        if not parts.fragment:
            assert path.is_dir() or path.is_file(), link
            continue
        text = path.read_text(encoding="utf-8")
        assert f'id="{parts.fragment}"' in text, link


def test_without_the_copy_the_public_url_stays(monkeypatch, tmp_path):
    monkeypatch.delenv("WIZARD_DOCS_URL", raising=False)
    monkeypatch.setattr(docs_map, "INSTALLED_SITE", tmp_path / "nothing")
    assert docs_map.docs_base() == docs_map.DEFAULT_DOCS_URL
    monkeypatch.setattr(docs_map, "INSTALLED_SITE", tmp_path)
    (tmp_path / "index.html").write_text("<html></html>")
    assert docs_map.docs_base() == tmp_path.as_uri() + "/"
    monkeypatch.setenv("WIZARD_DOCS_URL", "https://docs.example.org/kw")
    assert docs_map.docs_base() == "https://docs.example.org/kw/"


# -- Served by a real Jupyter server ---------------------------------------------

PROBE = """
import os
from pathlib import Path

from wizard.server import docs_site


def _jupyter_server_extension_points():
    return [{"module": "kw_docs_probe"}]


def _load_jupyter_server_extension(app):
    root = Path(os.environ["KW_DOCS_ROOT"])
    app.web_app.add_handlers(".*$", docs_site.handlers(app.base_url, root=root))
"""


@pytest.fixture(scope="module")
def docs_server(built_site, tmp_path_factory):
    from jupyter_fixtures import JupyterServer, need_jupyter

    need_jupyter()
    base = tmp_path_factory.mktemp("docs-server")
    (base / "ext").mkdir()
    (base / "ext" / "kw_docs_probe.py").write_text(PROBE)
    path = os.pathsep.join(filter(None, [str(base / "ext"), os.environ.get("PYTHONPATH")]))
    server = JupyterServer(
        base,
        extra_args=[
            '--ServerApp.jpserver_extensions={"kw_docs_probe": True, "wizard.server_ext": False}',
        ],
        env={"PYTHONPATH": path, "KW_DOCS_ROOT": str(built_site)},
    )
    with server:
        yield server


def get(server, path, token=True, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"token {server.token}"} if token else {}
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_the_server_serves_every_linked_anchor(docs_server):
    from wizard.server import docs_site

    assert docs_site.docs_url("/user/ada/") == "/user/ada/kernel-wizard/docs/"
    base = docs_site.docs_url("/")
    labels = [*docs_map.LABELS, *(r["anchor"] for r in signals.SIGNALS), *messages.BY_ID]
    pages = {}
    for label in labels:
        url = docs_map.url_for(label, base)
        path, _, anchor = url.partition("#")
        if path not in pages:
            status, _headers, body = get(docs_server, path)
            assert status == 200, (url, status)
            pages[path] = body.decode("utf-8")
        assert f'id="{anchor}"' in pages[path], url
    status, headers, _ = get(docs_server, base.rstrip("/"))
    assert status in (301, 302) and headers["Location"].endswith("/kernel-wizard/docs/index.html")
    status, _h, body = get(docs_server, base + "wizard.pyz")
    assert status == 200 and body.startswith(b"#!")


def test_the_server_serves_nobody_who_is_not_logged_in(docs_server):
    base = "/kernel-wizard/docs/"
    for path in (base + "index.html", base + "by-message.html", base.rstrip("/")):
        status, headers, body = get(docs_server, path, token=False)
        assert status in (302, 403), (path, status)
        if status == 302:
            assert "/login" in headers["Location"], headers
        assert b"wizard-paste" not in body
    status, _h, _b = get(docs_server, base + "index.html", token=False, method="HEAD")
    assert status in (302, 403)


def test_nothing_outside_the_site_is_served(docs_server, built_site):
    base = "/kernel-wizard/docs/"
    status, _h, _b = get(docs_server, base + "../../../etc/passwd")
    assert status in (403, 404), status
    status, _h, _b = get(docs_server, base + "%2e%2e/%2e%2e/conf.py")
    assert status in (403, 404), status


def test_handlers_without_a_copy_are_none(monkeypatch, tmp_path):
    from wizard.server import docs_site

    monkeypatch.setattr(docs_map, "INSTALLED_SITE", tmp_path / "none")
    assert not docs_site.has_installed_copy()
    assert docs_site.handlers("/") == []
    assert len(docs_site.handlers("/", root=tmp_path)) == 2
