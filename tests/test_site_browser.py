"""Every page of the built site in a real headless Chromium (Debian's), over HTTP on 127.0.0.1.

Each page: no console error, no request to any host but 127.0.0.1, the wizard box
visible right below the title (none on search and genindex), compact, with a download
that works, each anchor the wizard links to present, and no serious or critical axe-core
violation in the light or the dark theme. A full-page screenshot of each page goes to
artifacts/screenshots/. Then, as a reader would: find-in-page for every message heading
of the by-message page, the site's search for a message, a number and a product, and the
signals table on a 390 px phone.
"""

import functools
import os
import re
import shutil
import subprocess
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import BY_MESSAGE, ROOT, by_message_headings, need

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
# axe-core comes from npm (tests/axe/package-lock.json), never from a CDN.
AXE_DIR = ROOT / "tests" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_IMPACTS = {"serious", "critical"}
NO_BOX = {"genindex.html", "search.html"}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The box's height at most, in pixels on a desktop and as a share of a phone's screen.
BOX_MAX_DESKTOP = 90
BOX_MAX_PHONE_SHARE = 0.25
# Colours change with a transition (sphinx-design's tabs: 0.25 s): let it end before axe
# looks, or it measures a colour halfway between the themes.
SETTLE_MS = 600
# A page taller than this gets a screenshot of its first screen only.
SHOT_MAX = 16000


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


@pytest.fixture(scope="module")
def axe_js():
    """axe-core's script, installed from tests/axe/package-lock.json on first use."""
    if not AXE_JS.is_file():
        npm = shutil.which("npm")
        need(npm, "npm, to install axe-core from tests/axe/package-lock.json")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=AXE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page, axe_js):
    """Serious and critical axe-core violations on the page as it is shown now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_js)
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in found if v["impact"] in AXE_IMPACTS]


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


def test_every_page_in_chromium(built_site, site_url, browser, axe_js):
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
        if name in NO_BOX:
            if box.count():
                problems.append(f"{name}: has the wizard box")
        elif box.count() != 1 or not box.is_visible():
            problems.append(f"{name}: the wizard box is not visible")
        else:
            before = box.evaluate(
                "e => e.previousElementSibling && e.previousElementSibling.tagName"
            )
            if before != "H1":
                problems.append(f"{name}: the box does not follow the page's title ({before})")
            height = box.bounding_box()["height"]
            if height > BOX_MAX_DESKTOP:
                problems.append(f"{name}: the box is {height:.0f} px high (> {BOX_MAX_DESKTOP})")
            if box.evaluate("e => getComputedStyle(e).borderLeftStyle") != "solid":
                problems.append(f"{name}: the box is unstyled (wizard-box.css not loaded)")
            href = box.locator("a.wizard-box-download").get_attribute("href")
            with urllib.request.urlopen(urljoin(page.url, href), timeout=10) as resp:
                if resp.status != 200 or resp.read(2) != b"#!":
                    problems.append(f"{name}: {href} is not the wizard.pyz")
        for anchor in wanted.get(name, []):
            if page.locator(f"[id='{anchor}']").count() != 1:
                problems.append(f"{name}: no element with id {anchor!r}")
        stem = re.sub(r"[^\w.-]", "_", name.removesuffix(".html"))
        # a page taller than Chromium's largest texture (16,384 px) takes it half a minute
        # to shoot whole: its first screen only
        tall = page.evaluate("() => document.documentElement.scrollHeight") > SHOT_MAX
        page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"), full_page=not tall)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.wait_for_timeout(SETTLE_MS)
            for v in axe_violations(page, axe_js):
                problems.append(f"{name} ({scheme}): axe {v['impact']} {v['id']}: {v['nodes'][:3]}")
        page.set_viewport_size(PHONE)
        page.emulate_media(color_scheme="light")
        page.wait_for_timeout(SETTLE_MS)
        for v in axe_violations(page, axe_js):
            problems.append(f"{name} (phone): axe {v['impact']} {v['id']}: {v['nodes'][:3]}")
        if name not in NO_BOX and box.count() == 1:
            height = box.bounding_box()["height"]
            if height > BOX_MAX_PHONE_SHARE * PHONE["height"]:
                problems.append(f"{name}: on a phone the box is {height:.0f} px high")
        page.screenshot(path=str(SCREENSHOTS / f"{stem}-phone.png"))
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


FIND_IN_HEADINGS = """text => {
    window.getSelection().removeAllRanges();
    let hits = 0;
    while (hits < 50 && window.find(text, false, false, false)) {
        hits += 1;
        const node = window.getSelection().anchorNode;
        const element = node.nodeType === 1 ? node : node.parentElement;
        if (element.closest("h2, h3")) return hits;
    }
    return hits ? -hits : 0;
}"""


def test_find_in_page_finds_every_message(site_url, browser):
    """Ctrl-F for each message heading succeeds on the by-message page: no tab hides it."""
    page = browser.context.new_page()
    page.goto(f"{site_url}{BY_MESSAGE}.html", wait_until="load")
    missing = []
    for heading in by_message_headings():
        # window.find(string, caseSensitive, backwards, wrapAround), as Ctrl-F does it:
        # the first hit may be in the text; the heading must be among the hits.
        found = page.evaluate(FIND_IN_HEADINGS, heading)
        if found == 0:
            missing.append(heading)
        elif found < 0:
            missing.append(f"{heading} (found, but not in a heading)")
    page.close()
    assert not missing, "not found on the page:\n" + "\n".join(missing)


def search(page, site_url, query):
    """The site's own search: (page names of the results in order, their snippets)."""
    page.goto(f"{site_url}search.html?q={query}", wait_until="load")
    page.locator("#search-results p.search-summary").wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # the snippets arrive one result after the other
    links = page.locator("#search-results ul.search li > a")
    names = [
        Path(urlsplit(links.nth(i).get_attribute("href")).path).name for i in range(links.count())
    ]
    snippets = page.locator("#search-results ul.search li p.context").all_inner_texts()
    return names, snippets


FIRST_RESULTS = {f"{BY_MESSAGE}.html", f"{docs_map.LABELS['kernel-signals'][0]}.html"}


@pytest.mark.parametrize("query", ["appears to have died", "137", "SIGSEGV", "colab"])
def test_search_puts_the_message_pages_first(site_url, browser, query):
    page = browser.context.new_page()
    names, snippets = search(page, site_url, query)
    page.close()
    assert names and names[0] in FIRST_RESULTS, (query, names)
    assert not [s for s in snippets if "Run the wizard" in s], snippets


@pytest.mark.parametrize("query", ["cuda", "oomd", "docker", "139", "0xC0000005", "memory"])
def test_search_finds_a_page_and_no_snippet_is_the_box(site_url, browser, query):
    page = browser.context.new_page()
    names, snippets = search(page, site_url, query)
    page.close()
    assert names, query
    assert not [s for s in snippets if "Run the wizard" in s or "wizard.pyz, then" in s], snippets


def test_the_signals_table_fits_a_phone(site_url, browser):
    """At 390 px every column of the signals table is on screen, "Read next" included."""
    page = browser.context.new_page()
    page.set_viewport_size(PHONE)
    page.goto(site_url + f"{docs_map.LABELS['kernel-signals'][0]}.html", wait_until="load")
    table = page.locator("table.wizard-signals")
    table.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    table.screenshot(path=str(SCREENSHOTS / "signals-table-phone.png"))
    width = page.evaluate("() => document.documentElement.clientWidth")
    outside = []
    rows = table.locator("tbody tr")
    assert rows.count() == len(signals.SIGNALS)
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        for j in range(cells.count()):
            box = cells.nth(j).bounding_box()
            if box["x"] < 0 or box["x"] + box["width"] > width + 0.5:
                outside.append(f"row {i + 1}, column {j + 1}: {box}")
        last = cells.nth(cells.count() - 1)
        if not last.locator("a").first.is_visible():
            outside.append(f"row {i + 1}: the Read next link is not visible")
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    page.close()
    assert not outside, "\n".join(outside)
    assert overflow <= width, f"the page scrolls sideways: {overflow} > {width}"


def test_option_names_do_not_break_inside(site_url, browser):
    """On a phone, an option such as --verbose or --yes stays on one line."""
    page = browser.context.new_page()
    page.set_viewport_size(PHONE)
    broken = []
    for name in [f"{docs_map.LABELS['wizard'][0]}.html", f"{BY_MESSAGE}.html"]:
        page.goto(site_url + name, wait_until="load")
        broken += page.evaluate(
            """() => [...document.querySelectorAll('code.literal span.pre')]
                 .filter(e => /^--?[a-z]/.test(e.textContent) && e.getClientRects().length > 1)
                 .map(e => e.textContent)"""
        )
    page.close()
    assert not broken, broken


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_banner_figure_is_sharp_and_fits(site_url, browser, viewport):
    """On the hub: twice the pixels it is shown at (2x screens), never wider than the screen."""
    page = browser.context.new_page()
    page.set_viewport_size(viewport)
    page.goto(site_url + "index.html", wait_until="load")
    img = page.locator("img[alt='Kernel last terminated by signal SIGKILL banner']")
    assert img.count() == 1
    natural, shown = img.evaluate("e => [e.naturalWidth, e.getBoundingClientRect().width]")
    width = page.evaluate("() => document.documentElement.clientWidth")
    page.close()
    assert natural >= 2 * shown - 1, (natural, shown)
    assert shown <= width, (shown, width)
