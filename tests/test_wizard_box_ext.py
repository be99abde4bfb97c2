"""The wizard_site extension on its own, over tests/roots/test-wizard-box/.

That root uses other themes than the real site (alabaster, basic) and a stand-in
package ``boxdata`` for the wizard's tables, so these tests do not depend on the
real pages or the real wizard.
"""

import posixpath
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import wizard_site
from sphinx.util.inventory import InventoryFile

THEMES = ["alabaster", "basic"]


def _sphinx(theme, srcdir=None):
    """Each test builds in its own copy of the root, so no build sees another's output."""
    return pytest.mark.sphinx(
        "html",
        testroot="wizard-box",
        srcdir=srcdir or f"wizard-box-{theme}",
        confoverrides={"html_theme": theme},
    )


@pytest.fixture(autouse=True)
def _fresh_boxdata():
    """Each build imports boxdata from its own copy of the root (its conf.py puts it first)."""
    for name in [m for m in sys.modules if m == "boxdata" or m.startswith("boxdata.")]:
        del sys.modules[name]


def html_pages(outdir):
    return sorted(
        p for p in Path(outdir).rglob("*.html") if p.relative_to(outdir).parts[0][0] != "_"
    )


def box_of(page_html):
    match = re.search(r'<aside class="wizard-box" id="wizard-box".*?</aside>', page_html, re.S)
    return match.group(0) if match else None


def inventory(outdir):
    with open(Path(outdir) / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", posixpath.join)
    return {name: getattr(item, "uri", None) or item[2] for name, item in inv["std:label"].items()}


@pytest.mark.parametrize(
    "theme", [pytest.param(theme, marks=_sphinx(theme), id=theme) for theme in THEMES]
)
def test_every_page_gets_the_box_whatever_the_theme(app, theme):
    app.build()
    assert app.warning.getvalue() == ""
    assert app.config.html_theme == theme
    pages = {p.relative_to(app.outdir).as_posix(): p for p in html_pages(app.outdir)}
    assert {"index.html", "wizard.html", "genindex.html", "search.html"} <= set(pages)
    for name, path in pages.items():
        page_html = path.read_text(encoding="utf-8")
        if name in ("genindex.html", "search.html"):
            # made from templates alone: a reader there is looking for a page
            assert 'id="wizard-box"' not in page_html, name
            continue
        assert page_html.count('id="wizard-box"') == 1, name
        box = box_of(page_html)
        assert "Kernel died? Run the wizard" in box
        assert '<code class="wizard-box-command">python3 wizard.pyz</code>' in box
        assert "<code>python -m wizard</code>" in box
        href = re.search(r'class="wizard-box-download" href="([^"]+)"', box).group(1)
        assert (path.parent / href).resolve() == (Path(app.outdir) / "wizard.pyz").resolve()
        more = re.search(r'class="wizard-box-more" href="([^"]+)"', box)
        if name == "wizard.html":
            assert more is None  # no link from the wizard page to itself
        else:
            assert (path.parent / more.group(1)).resolve() == Path(app.outdir, "wizard.html")
        # right below the page's title
        assert re.search(r'</h1>\s*<aside class="wizard-box"', page_html), name


@_sphinx("alabaster", srcdir="wizard-box-pyz")
def test_wizard_pyz_is_written_and_runs(app, tmp_path):
    cache = Path(app.srcdir) / "boxdata" / "commands" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "cli.cpython-311.pyc").write_bytes(b"not shipped")
    (Path(app.srcdir) / "boxdata" / "commands" / ".cli.py.swp").write_bytes(b"not shipped")
    app.build()
    pyz = Path(app.outdir) / "wizard.pyz"
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
        assert zf.read("__main__.py").decode().splitlines()[1:] == [
            "import boxdata.commands.cli",
            "boxdata.commands.cli.main()",
        ]
        assert {zi.date_time for zi in zf.infolist()} == {wizard_site.ZIP_EPOCH}
    assert names == sorted(names[:1]) + sorted(names[1:])
    assert "boxdata/commands/cli.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".swp"))]

    def run(*args):
        return subprocess.run(
            [sys.executable, str(pyz), *args], cwd=tmp_path, capture_output=True, text=True
        )

    ran = run("--exit", "3")
    assert (ran.returncode, ran.stdout) == (3, "boxdata ran\n")
    usage = run("--no-such-flag")
    assert usage.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in usage.stderr


def test_build_pyz_is_deterministic(tmp_path, rootdir):
    pkg = tmp_path / "src" / "boxdata"
    pkg.parent.mkdir()
    import shutil

    shutil.copytree(rootdir / "test-wizard-box" / "boxdata", pkg)
    first = wizard_site.build_pyz(pkg, tmp_path / "a.pyz", "boxdata.commands.cli:main").read_bytes()
    for path in pkg.iterdir():
        path.touch()
    (pkg / "__pycache__").mkdir(exist_ok=True)
    (pkg / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"junk")
    second = wizard_site.build_pyz(
        pkg, tmp_path / "b.pyz", "boxdata.commands.cli:main"
    ).read_bytes()
    assert first == second
    (pkg / "commands" / "cli.py").write_text(
        (pkg / "commands" / "cli.py").read_text() + "\n# changed\n"
    )
    third = wizard_site.build_pyz(pkg, tmp_path / "c.pyz", "boxdata.commands.cli:main").read_bytes()
    assert third != first


@_sphinx("alabaster")
def test_tables_render_anchored_rows_and_labels(app):
    app.build()
    assert app.warning.getvalue() == ""
    index = (Path(app.outdir) / "index.html").read_text(encoding="utf-8")
    wizard = (Path(app.outdir) / "wizard.html").read_text(encoding="utf-8")

    row = re.search(r'<tr[^>]*id="signal-sigkill"[^>]*>(.*?)</tr>', index, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert len(cells) == 5
    assert "SIGKILL" in cells[0] and ">9<" in cells[1] and ">137<" in cells[2]
    assert "OOM killer" in cells[3]
    assert 'href="#box-memory"' in cells[4] and "Memory" in cells[4]
    assert re.search(r'<tr[^>]*id="exit-code"', index)
    for header in ("Signal", "Number", "Exit status in a shell", "What it most likely means"):
        assert f"<p>{header}</p>" in index
    # :ref:`signal-sigkill` in the prose resolves to the row
    assert re.search(r'href="#signal-sigkill"><span class="std std-ref">SIGKILL', index)

    for finding, label in [("killed-sigkill", "box-signals"), ("oom-kills-recorded", "box-memory")]:
        row = re.search(rf'<tr[^>]*id="finding-{finding}"[^>]*>(.*?)</tr>', wizard, re.S)
        assert row, finding
        assert f"index.html#{label}" in row.group(1)
    assert re.search(r'<dt id="check-memory">Memory \(<code', wizard)
    assert re.search(r'<dt id="check-banner">', wizard)
    # an option in the prose is code, not "–banner" from smart quotes
    assert re.search(r"given with <code[^>]*><span[^>]*>--banner</span></code>\.", wizard)
    for code in (0, 1, 2):
        assert re.search(rf'<tr[^>]*id="wizard-exit-{code}"', wizard)

    labels = inventory(app.outdir)
    assert labels["signal-sigkill"] == "index.html#signal-sigkill"
    assert labels["exit-code"] == "index.html#exit-code"
    assert labels["finding-oom-kills-recorded"] == "wizard.html#finding-oom-kills-recorded"


@_sphinx("alabaster", srcdir="wizard-box-labels")
def test_a_missing_or_misplaced_label_is_a_warning(app, monkeypatch):
    import boxdata.diagnosis.docs_map

    monkeypatch.setitem(boxdata.diagnosis.docs_map.LABELS, "box-nowhere", ("index", "Nowhere"))
    monkeypatch.setitem(boxdata.diagnosis.docs_map.LABELS, "box-memory", ("wizard", "Memory"))
    app.build()
    warnings = app.warning.getvalue()
    assert "label 'box-nowhere' (wizard/diagnosis/docs_map.py) is not defined" in warnings
    assert (
        "label 'box-memory' is on page 'index', but wizard/diagnosis/docs_map.py says 'wizard'"
        in warnings
    )
    assert len(warnings.strip().splitlines()) == 2


def test_label_problems():
    labels = {"a": ("one", "A"), "b": ("two", "B"), "c": ("one", "C"), "d_x": ("one", "D")}
    std = {"a": ("one", "a", "A"), "b": ("one", "b", "B"), "d_x": ("one", "d-x", "D")}
    assert wizard_site.label_problems(labels, std) == [
        "label 'b' is on page 'one', but wizard/diagnosis/docs_map.py says 'two'",
        "label 'c' (wizard/diagnosis/docs_map.py) is not defined; it belongs on page 'one'",
        "label 'd_x' on page 'one' has the anchor 'd-x'; the wizard links to #d_x "
        "(use lower case and hyphens)",
    ]
    # a section that moved from page 'two' to 'one' and left its anchor on 'two'
    assert wizard_site.label_problems(labels, std, {"b": "two"})[0].startswith("label 'c'")
    assert "label 'b'" in wizard_site.label_problems(labels, std, {"b": "three"})[0]


def test_insert_box():
    box = '<aside id="wizard-box"></aside>'
    body = '<section id="t"><h1>T<a class="headerlink" href="#t">¶</a></h1>\n<p>x</p>'
    assert wizard_site.insert_box(body, box) == body.replace("</h1>", "</h1>" + box)
    assert wizard_site.insert_box("<p>no title</p>", box) == box + "<p>no title</p>"
