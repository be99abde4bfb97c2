"""Every URL the wizard prints, pointed at a local build of the site, opens a page and an anchor."""

import io
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_cli import GIB, make_tree, point_wizard_at

from wizard.commands import cli
from wizard.diagnosis import signals
from wizard.report.context import Context


def anchors(page):
    return set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))


def check_url(url, site):
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    page = Path(parts.path)
    assert page.is_file(), url
    assert page.resolve().is_relative_to(site.resolve()), url
    assert parts.fragment in anchors(page), url


@pytest.fixture
def system(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "root", used=int(1.95 * GIB), oom_kill=2, pids=(99, 100))
    point_wizard_at(root, monkeypatch)
    # a kernelspec whose interpreter is missing, so that finding shows too
    spec = root / "home/user/.local/share/jupyter/kernels/broken"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps({"argv": ["/nonexistent/bin/python", "-m", "ipykernel_launcher"]})
    )
    return root


def banners():
    yield None
    for row in signals.SIGNALS:
        yield f"signal {row['name']}" if row["number"] else "Kernel last exited with code 1."


def test_printed_urls_open_their_section(built_site, system):
    base = built_site.as_uri() + "/"
    seen = set()
    for banner in banners():
        args = ["--no-input", "--docs-url", base]
        if banner:
            args += ["--banner", banner]
        for fmt in (["--json"], ["-v"]):
            out = io.StringIO()
            ctx = Context(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(), environ={})
            cli.run([*args, *fmt], ctx)
            text = out.getvalue()
            urls = re.findall(r"file://[^\s\"]+", text)
            assert urls, text
            for url in urls:
                if url.rstrip("/") == base.rstrip("/"):
                    continue  # the JSON's docs_url itself
                check_url(url, built_site)
                seen.add(urlsplit(url).fragment)
    # the run covered the memory, processes, kernelspec and every signal's section
    expected = {
        "kernel-terminated-memory",
        "low-memory",
        "too-many-processes",
        "kernel-cannot-start",
        "kernel-terminated-eliminate-jupyter",
    } | {row["anchor"] for row in signals.SIGNALS}
    assert expected <= seen, expected - seen
