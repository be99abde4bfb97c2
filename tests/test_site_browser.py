"""Every page of the built site in a real headless Chromium (Debian's), over HTTP on 127.0.0.1.

Each page: no console error, no request to any host but 127.0.0.1, the wizard box
visible at the top of the main content with a download that works, and each anchor
the wizard links to present. A full-page screenshot of each page goes to
artifacts/screenshots/.
"""

import functools
import os
import re
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import ROOT, need

from wizard.diagnosis import docs_map, signals

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
LOCAL_SCHEMES = {"data", "blob", "about"}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site_url(built_site):
    handler = functools.partial(QuietHandler, directory=str(built_site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    need(os.access(CHROMIUM, os.X_OK), f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright package (pip install playwright)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            color_scheme="light",
        )
        context.set_default_timeout(20_000)
        # Anything not on 127.0.0.1 is recorded and never leaves the machine.
        outside = []

        def is_outside(url):
            parts = urlsplit(url)
            return parts.scheme not in LOCAL_SCHEMES and parts.hostname != "127.0.0.1"

        def block(route):
            outside.append(route.request.url)
            route.abort()

        context.route(is_outside, block)
        yield SimpleNamespace(context=context, outside=outside)
        context.close()


def page_names(built_site):
    return sorted(
        p.relative_to(built_site).as_posix()
        for p in built_site.rglob("*.html")
        if not p.relative_to(built_site).parts[0].startswith("_")
    )


def anchors_by_page():
    """Every anchor the wizard links to, by the page it must be on."""
    wanted = {}
    for label, (page, _title) in docs_map.LABELS.items():
        wanted.setdefault(f"{page}.html", []).append(label)
    signals_page = f"{docs_map.LABELS['kernel-signals'][0]}.html"
    wanted.setdefault(signals_page, []).extend(row["anchor"] for row in signals.SIGNALS)
    return wanted


def test_every_page_in_chromium(built_site, site_url, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    names = page_names(built_site)
    assert {"index.html", "genindex.html", "search.html"} <= set(names)
    wanted = anchors_by_page()
    problems = [f"{name}: missing (the wizard links to it)" for name in set(wanted) - set(names)]
    for name in names:
        page = browser.context.new_page()
        errors = []
        page.on("console", lambda msg, e=errors: msg.type == "error" and e.append(msg.text))
        page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
        before = len(browser.outside)
        page.goto(site_url + name, wait_until="load")
        page.wait_for_load_state("networkidle")
        problems += [f"{name}: console error: {text}" for text in errors]
        problems += [f"{name}: request to {url}" for url in browser.outside[before:]]

        box = page.locator("#wizard-box")
        if box.count() != 1 or not box.is_visible():
            problems.append(f"{name}: the wizard box is not visible")
        else:
            first = page.evaluate(
                "() => { const main = document.querySelector('[role=main], main');"
                " return main && main.firstElementChild && main.firstElementChild.id; }"
            )
            if first != "wizard-box":
                problems.append(f"{name}: the box is not first in the main content ({first})")
            if box.evaluate("e => getComputedStyle(e).borderLeftStyle") != "solid":
                problems.append(f"{name}: the box is unstyled (wizard-box.css not loaded)")
            href = box.locator("a.wizard-box-download").get_attribute("href")
            with urllib.request.urlopen(urljoin(page.url, href), timeout=10) as resp:
                if resp.status != 200 or resp.read(2) != b"#!":
                    problems.append(f"{name}: {href} is not the wizard.pyz")
        for anchor in wanted.get(name, []):
            if page.locator(f"[id='{anchor}']").count() != 1:
                problems.append(f"{name}: no element with id {anchor!r}")
        shot = SCREENSHOTS / (re.sub(r"[^\w.-]", "_", name.removesuffix(".html")) + ".png")
        page.screenshot(path=str(shot), full_page=True)
        page.close()
    assert not problems, "\n".join(problems)


def test_search_finds_the_low_memory_page(site_url, browser):
    page = browser.context.new_page()
    page.goto(site_url + "search.html?q=memory", wait_until="load")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for()
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    page.close()
    low_memory = f"{docs_map.LABELS['low-memory'][0]}.html"
    assert [h for h in hrefs if Path(urlsplit(h).path).name == low_memory], hrefs


def test_the_box_download_link_in_the_browser(site_url, browser):
    """Clicking the box's link on a page in a subfolder-free site downloads wizard.pyz."""
    page = browser.context.new_page()
    page.goto(site_url + "index.html", wait_until="load")
    with page.expect_download() as info:
        page.locator("#wizard-box a.wizard-box-download").click()
    download = info.value
    assert download.suggested_filename == "wizard.pyz"
    assert Path(download.path()).read_bytes().startswith(b"#!/usr/bin/env python3\n")
    page.close()
