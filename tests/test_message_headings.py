"""The by-message page's headings are the frontends' real words (tests/frontend_wordings.py):
a heading reworded, or a frontend section heading no frontend prints, fails here."""

import re
import signal
from pathlib import Path

import pytest
from frontend_wordings import CORE, CORE_SIGNALS, FRONTENDS, PLATFORMS, SHELL_SIGNALS, rendered

PAGE = Path(__file__).resolve().parent.parent / "docs" / "by-message.rst"
# The page's sections that quote these frontends: every heading in them must be one.
FRONTEND_SECTIONS = ("JupyterLab and Notebook", "VS Code")


def headings():
    """``[(section, heading)]``: ``=`` underlines open a section, ``-`` ones a message."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    out, section = [], None
    for above, line in zip(lines, lines[1:]):
        title = above.strip()
        if not title or not re.fullmatch(r"([=\-])\1+", line) or len(line) < len(title):
            continue
        if line[0] == "=":
            section = title
        else:
            out.append((section, title))
    return out


def test_the_page_has_its_sections():
    sections = {s for s, _ in headings()}
    assert set(FRONTEND_SECTIONS) <= sections


@pytest.mark.parametrize("entry", FRONTENDS, ids=lambda e: e["shown"][:40])
def test_each_frontend_wording_is_a_heading_word_for_word(entry):
    assert rendered(entry).startswith(entry["shown"])  # the fact agrees with its source
    assert entry["shown"] in [h for _, h in headings()]


def test_frontend_sections_hold_only_real_wordings():
    real = {e["shown"] for e in FRONTENDS}
    for section, heading in headings():
        if section in FRONTEND_SECTIONS:
            assert heading in real, f"{section}: {heading!r} is no frontend's wording"


@pytest.mark.parametrize("text", PLATFORMS, ids=lambda t: t[:40])
def test_platform_banners_are_headings(text):
    assert text in [h for _, h in headings()]


@pytest.mark.parametrize("name", SHELL_SIGNALS)
def test_shell_signal_messages_are_this_systems_words(name):
    described = signal.strsignal(getattr(signal, name))
    if described is None or described.startswith("Unknown"):
        pytest.skip(f"no description of {name} here")
    want = described + (CORE if name in CORE_SIGNALS else "")
    assert want in [h for _, h in headings()]
