"""The real site, built once (conftest.py ``built_site``) exactly as tox and Read the Docs do."""

import json
import os
import posixpath
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import BY_MESSAGE, ROOT, by_message_headings
from sphinx.util.inventory import InventoryFile
from test_cli import make_tree

import wizard
from wizard.diagnosis import docs_map, signals

# The page the site grew from lies in shared/ beside the checkout.
_SEED_NAME = Path("shared", "seed", "jupyter-kernel-terminated.rst")
SEED = next(
    (p for p in (ROOT.parent / _SEED_NAME, Path("/work") / _SEED_NAME) if p.is_file()),
    ROOT.parent / _SEED_NAME,
)
SEED_REFS = ["jupyter-halt", "low-memory", "plain-jupyter-server"]
BANNER_ALT = "Kernel last terminated by signal SIGKILL banner"
# Resources a page fetches by itself (a <link rel="canonical"> or a plain link is not fetched).
FETCHING_RELS = {"stylesheet", "preload", "prefetch", "modulepreload", "icon", "manifest"}


class Page(HTMLParser):
    """What a test needs from one HTML page: ids, elements with their attributes, text."""

    def __init__(self, path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.ids = set()
        self.elements = []  # (tag, attrs dict, index into self.elements of the parent)
        self.links = []  # (href, text)
        self._texts = []
        self._skip = 0
        self._link = None
        self.feed(path.read_text(encoding="utf-8"))
        self.text = " ".join(" ".join(self._texts).split())

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "a" and "href" in attrs:
            self._link = [attrs["href"], ""]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "a" and self._link:
            self.links.append((self._link[0], " ".join(self._link[1].split())))
            self._link = None

    def handle_data(self, data):
        if self._skip:
            return
        self._texts.append(data)
        if self._link:
            self._link[1] += data

    def find(self, tag, **attrs):
        return [
            a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]

    def target(self, href):
        """The file a relative href points to (None for another host or a pure anchor)."""
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path:
            return None
        return (self.path.parent / unquote(parts.path)).resolve()


def html_pages(outdir):
    return sorted(
        p for p in outdir.rglob("*.html") if not p.relative_to(outdir).parts[0].startswith("_")
    )


@pytest.fixture(scope="module")
def pages(built_site):
    return {p.relative_to(built_site).as_posix(): Page(p) for p in html_pages(built_site)}


@pytest.fixture(scope="module")
def labels(built_site):
    with open(built_site / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", posixpath.join)
    return {name: getattr(item, "uri", None) or item[2] for name, item in inv["std:label"].items()}


def test_build_passes_with_no_warnings(site_build):
    problems = [line for line in site_build.stderr.splitlines() if line.strip()]
    assert site_build.returncode == 0 and not problems, "\n".join(problems[-60:])


def moved_anchor(page, label):
    """The anchor a section left behind when it moved (``.. wizard-moved::``), or None."""
    return next(
        (a for a in page.find("p", id=label) if "wizard-moved" in a.get("class", "").split()),
        None,
    )


def test_every_wizard_label_is_on_its_page(pages, labels):
    """Each label is on the page docs_map names, or that page keeps a moved anchor for it."""
    missing = []
    for label, (page, _title) in sorted(docs_map.LABELS.items()):
        uri = labels.get(label)
        if label not in pages[f"{page}.html"].ids:
            missing.append(f"{label}: no element with that id on {page}.html")
        elif uri != f"{page}.html#{label}" and not moved_anchor(pages[f"{page}.html"], label):
            missing.append(f"{label}: objects.inv has {uri!r}, docs_map says {page}.html#{label}")
    assert not missing, "\n".join(missing)


def test_a_moved_anchor_links_to_the_section_s_new_place(pages, labels):
    """A URL the wizard prints for a section that moved lands on a link to it."""
    moved = [
        (name, label)
        for label, (page, _title) in docs_map.LABELS.items()
        for name in [f"{page}.html"]
        if moved_anchor(pages[name], label)
    ]
    for name, label in moved:
        target = labels[label]
        assert not target.startswith(name + "#"), (name, label)
        assert [h for h, _t in pages[name].links if h.endswith(target)], (name, label, target)


def test_wizard_urls_lead_to_their_anchor(pages):
    """docs_map.url_for builds PAGE.html#LABEL: the built page has that anchor."""
    base = "https://example.org/site/"
    for label in [*docs_map.LABELS, *(row["anchor"] for row in signals.SIGNALS)]:
        url = docs_map.url_for(label, base)
        page, _, anchor = url[len(base) :].partition("#")
        assert anchor in pages[page].ids, url


def test_the_seed_pages_references_resolve(labels):
    found = set(re.findall(r":ref:`(?:[^`<]*<)?([^`<>]+)>?`", SEED.read_text()))
    assert found == set(SEED_REFS)  # the seed still asks for what this test checks
    assert not [ref for ref in SEED_REFS if ref not in labels]


# Pages made from templates only: a reader there looks for a page, and gets no box.
NO_BOX = {"genindex.html", "search.html"}
BOX_WORDS = ("Kernel died? Run the wizard", "python3 wizard.pyz")


def test_every_page_has_the_wizard_box_with_a_working_download(built_site, pages):
    pyz = (built_site / "wizard.pyz").resolve()
    assert {"index.html", *NO_BOX} <= set(pages)
    problems = [f"{n}: has the box" for n in NO_BOX if pages[n].find("aside", id="wizard-box")]
    for name, page in pages.items():
        if name in NO_BOX:
            continue
        boxes = page.find("aside", id="wizard-box")
        downloads = [
            a for a in page.find("a") if "wizard-box-download" in a.get("class", "").split()
        ]
        if len(boxes) != 1 or len(downloads) != 1:
            problems.append(f"{name}: {len(boxes)} boxes, {len(downloads)} download links")
        elif page.target(downloads[0]["href"]) != pyz:
            problems.append(f"{name}: download link {downloads[0]['href']!r} is not wizard.pyz")
        elif not all(words in page.text for words in BOX_WORDS):
            problems.append(f"{name}: the box lacks its title or command")
    assert not problems, "\n".join(problems)


def run_pyz(built_site, tmp_path, *args, env=None):
    return subprocess.run(
        [sys.executable, str(built_site / "wizard.pyz"), *args],
        cwd=tmp_path,  # away from the repository: the zip alone must do
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_wizard_pyz_runs_and_keeps_its_exit_codes(built_site, tmp_path):
    helped = run_pyz(built_site, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "usage:" in helped.stdout
    usage = run_pyz(built_site, tmp_path, "--no-such-flag")
    assert usage.returncode == 2, usage.stderr
    assert "Traceback" not in usage.stderr


def test_wizard_pyz_reports_json(built_site, tmp_path):
    """The zip alone, on a known system: 300 MiB of a 2 GiB cgroup, no kill, no kernel."""
    root = make_tree(tmp_path / "root")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WIZARD", "JUPYTER", "COCALC", "FORCE_COLOR"))
    }
    env.update(
        WIZARD_SYSROOT=str(root),
        HOME=str(tmp_path / "home"),
        JUPYTER_RUNTIME_DIR="/run/jupyter",
        NO_COLOR="1",
    )
    ran = run_pyz(built_site, tmp_path, "--json", "--no-input", env=env)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["schema"] == "kernel-wizard/2"
    assert report["version"] == wizard.__version__
    assert report["docs_url"] == "https://kernel-wizard.readthedocs.io/en/latest/"
    assert (report["banner"], report["intentional"]) == (None, None)
    mem = report["memory"]
    assert (mem["limit_bytes"], mem["used_bytes"], mem["limit_source"]) == (
        2 << 30,
        300 << 20,
        "cgroup v2 /job",
    )
    assert (report["kernels"], report["servers"], report["deaths"]) == ([], [], [])
    assert report["recorder"]["running"] is False
    assert [f["id"] for f in report["findings"]] == ["no-memory-evidence", "try-plain-server"]
    assert report["summary"] == {"problems": 0, "warnings": 0, "exit_code": 0}
    assert report["errors"] == []


def test_the_banner_figure_is_shown_with_its_alt_text(built_site, pages):
    image = (built_site / "_images" / "kernel_SIGKILL.png").resolve()
    assert image.is_file()
    shown = [
        name
        for name, page in pages.items()
        for img in page.find("img", alt=BANNER_ALT)
        if page.target(img.get("src", "")) == image
    ]
    assert shown, f"no page shows {image.name} with alt text {BANNER_ALT!r}"


def test_the_general_index_lists_kernel_terminated(pages):
    index = pages["genindex.html"]
    assert "Jupyter Notebooks" in index.text
    page = docs_map.LABELS["jupyter-kernel-terminated"][0]
    hrefs = [href for href, text in index.links if text == "kernel terminated"]
    assert [h for h in hrefs if h.startswith(f"{page}.html#")], hrefs


def test_every_signal_row_is_anchored_on_the_signals_page(pages, labels):
    page = docs_map.LABELS["kernel-signals"][0]
    ids = pages[f"{page}.html"].ids
    for row in signals.SIGNALS:
        assert row["anchor"] in ids, row["anchor"]
        assert labels.get(row["anchor"]) == f"{page}.html#{row['anchor']}"


def test_no_page_fetches_anything_from_another_host(built_site, pages):
    remote = []
    for name, page in pages.items():
        for tag, attrs in page.elements:
            url = None
            if tag in ("script", "img", "iframe", "source", "video", "audio", "embed"):
                url = attrs.get("src")
            elif tag == "link" and FETCHING_RELS & set(attrs.get("rel", "").split()):
                url = attrs.get("href")
            if url and (urlsplit(url).scheme or url.startswith("//")):
                remote.append(f"{name}: <{tag}> {url}")
    for css in (built_site / "_static").rglob("*.css"):
        for url in re.findall(
            r"""(?:url\(|@import\s+)\s*['"]?((?:https?:)?//[^'")\s]+)""", css.read_text()
        ):
            remote.append(f"{css.name}: {url}")
    assert not remote, "\n".join(remote)


# -- The seed page's prose is not copied -------------------------------------------

QUOTED_MESSAGE = "Kernel terminated -- this might be caused"
MIN_WORDS = 5


def _prose_paragraphs(rst):
    """The seed's own paragraphs: no directives, titles or indented (quoted) blocks."""
    paragraphs, current = [], []
    lines = rst.splitlines()
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        is_rule = re.fullmatch(r"([#=\-~^*])\1{2,}\s*", line)
        is_title = re.fullmatch(r"([#=\-~^*])\1{2,}\s*", nxt) and line.strip()
        if not line.strip() or line[0] in " \t" or line.startswith("..") or is_rule or is_title:
            if current:
                paragraphs.append(" ".join(current))
            current = []
            continue
        current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def normalise(text):
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2013", "--").replace("\u2014", "---")
    return " ".join(text.split()).lower()


def seed_sentences():
    sentences = []
    for para in _prose_paragraphs(SEED.read_text()):
        para = re.sub(r":\w+:`([^`<]*?)\s*<[^>]*>`", r"\1", para)  # :ref:`text <label>`
        para = re.sub(r":\w+:`([^`]*)`", r"\1", para)
        para = para.replace("``", "")
        for sentence in re.split(r"(?<=[.?!:])\s+(?=[A-Z])", para):
            sentence = sentence.strip().rstrip(".?!:")
            if QUOTED_MESSAGE in sentence or len(sentence.split()) < MIN_WORDS:
                continue
            sentences.append(sentence)
    return sentences


def test_the_seed_is_split_into_sentences():
    sentences = seed_sentences()
    assert "There are multiple reasons why you may see a yellow banner like this one" in sentences
    assert any(s.startswith("Open a terminal, type e.g., anaconda3, then copy") for s in sentences)
    assert not [s for s in sentences if "Kernel terminated --" in s or "=====" in s]
    assert len(sentences) >= 15


def test_no_sentence_of_the_seed_page_is_copied(pages):
    site = " ".join(normalise(page.text) for page in pages.values())
    copied = [s for s in seed_sentences() if normalise(s) in site]
    assert not copied, "sentences of the seed page found verbatim:\n" + "\n".join(copied)


def test_the_wizard_page_renders_the_wizards_tables(pages):
    """The directives are used where the labels say; their rows are there."""
    from wizard.commands import registry
    from wizard.diagnosis import rules

    page = pages[f"{docs_map.LABELS['wizard'][0]}.html"]
    assert {f"finding-{rule['id']}" for rule in rules.RULES} <= page.ids
    assert {f"check-{check['id']}" for check in rules.CHECKS} <= page.ids
    # each command's exit-code table is its own EXIT_CODES, row by row
    main = registry.module_of("")
    assert {f"wizard-exit-{code}" for code in main.EXIT_CODES} <= page.ids
    for name in ("run", "halt"):
        codes = registry.module_of(name).EXIT_CODES
        assert {f"wizard-{name}-exit-{code}" for code in codes} <= page.ids, name


# -- Finding one's message ------------------------------------------------------------


def test_the_by_message_page_has_every_heading_as_a_section(pages):
    """Each message heading of the source is a section there, with a cause, a fix, a link."""
    page_name = f"{BY_MESSAGE}.html"
    text = pages[page_name].text
    headings = by_message_headings()
    assert len(headings) >= 20, headings
    for heading in headings:
        assert heading in text, heading
    source = (Path(__file__).parent.parent / "docs" / f"{BY_MESSAGE}.rst").read_text()
    for block in re.split(r"\n\.\. _msg-", source)[1:]:
        assert ":Likely cause:" in block and ":First:" in block, block[:80]
        assert re.search(r":Read: .*:ref:`", block), block[:80]


def test_the_hub_links_the_by_message_page_first(built_site):
    """The first link of the hub's own text (after the title and the box) is By message."""
    page_html = (built_site / "index.html").read_text(encoding="utf-8")
    after_box = page_html[page_html.index("</aside>", page_html.index('id="wizard-box"')) :]
    first = re.search(r'<a class="reference internal" href="([^"#]+)', after_box).group(1)
    assert first == f"{BY_MESSAGE}.html", first


@pytest.mark.parametrize("number", ["132", "134", "135", "137", "139", "143", "138"])
def test_exit_statuses_are_in_the_general_index(built_site, number):
    """Sphinx's search skips words made of digits; index entries make them findable."""
    genindex = (built_site / "genindex.html").read_text(encoding="utf-8")
    entry = re.search(rf"<li>\s*{number}\s*<ul>(.*?)</ul>", genindex, re.S)
    assert entry, f"no index entry {number}"
    signals_page = docs_map.LABELS["kernel-signals"][0]
    hrefs = re.findall(r'href="([^"#]+)', entry.group(1))
    assert {f"{BY_MESSAGE}.html", f"{signals_page}.html"} & set(hrefs), hrefs


def test_the_wizard_box_is_below_the_title(built_site):
    for path in html_pages(built_site):
        page_html = path.read_text(encoding="utf-8")
        if path.name in NO_BOX:
            continue
        assert re.search(r"</h1>\s*<aside class=\"wizard-box\"", page_html), path.name


def test_the_box_is_not_in_the_search_index(built_site):
    index = (built_site / "searchindex.js").read_text(encoding="utf-8")
    assert "wizard-box" not in index
    script = (built_site / "_static" / "wizard-site.js").read_text(encoding="utf-8")
    assert ".wizard-box" in script and "htmlToText" in script


def test_console_prompts_are_not_copied(built_site, pages):
    """sphinx-copybutton is on every page with code, and strips the "$ " prompt."""
    scripts = [a.get("src", "") for a in pages["index.html"].find("script")]
    assert [src for src in scripts if src.startswith("_static/copybutton.js")], scripts
    options = (built_site / "_static" / "copybutton.js").read_text(encoding="utf-8")
    # formatCopyText(text, prompt, isRegexp, onlyCopyPromptLines, removePrompts, ...)
    assert "formatCopyText(text, '$ ', false, true, true" in options
