import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

# The Python-version runs (tox -e py39 ... py313) install no Sphinx: its fixtures only when present.
import importlib.util  # noqa: E402

pytest_plugins = ("sphinx.testing.fixtures",) if importlib.util.find_spec("sphinx") else ()

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition, why):
    """Skip when a real part is missing on a laptop; fail when it is missing in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {why}")
    pytest.skip(why)


# -- The user's own files --------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _history_db_of_this_run(tmp_path_factory):
    """Every recorder the tests start (watch, or the server extension that the installed
    package enables in each Jupyter server) writes here, never to the user's own
    history database."""
    if os.environ.get("WIZARD_DB"):
        yield
        return
    os.environ["WIZARD_DB"] = str(tmp_path_factory.mktemp("history") / "history.sqlite3")
    try:
        yield
    finally:
        os.environ.pop("WIZARD_DB", None)


# -- The site ------------------------------------------------------------------

# The page where each message is a heading: the one list of messages the tests use.
BY_MESSAGE = "by-message"


def by_message_headings():
    """The message headings of docs/by-message.rst (titles underlined with "-"), in order."""
    lines = (ROOT / "docs" / f"{BY_MESSAGE}.rst").read_text(encoding="utf-8").splitlines()
    return [
        title.strip()
        for title, under in zip(lines, lines[1:])
        if title.strip() and set(under) == {"-"} and len(under) >= len(title.strip())
    ]


SITE_BUILD = [
    sys.executable,
    "-m",
    "sphinx",
    "-c",
    str(ROOT),
    "-n",
    "-W",
    "--keep-going",
    "-b",
    "html",
    str(ROOT / "docs"),
]


@pytest.fixture(scope="session")
def rootdir():
    """sphinx.testing's test roots: tests/roots/test-NAME/."""
    return ROOT / "tests" / "roots"


@pytest.fixture(scope="session")
def site_build(tmp_path_factory):
    """The real site, built once per session exactly as tox and Read the Docs build it.

    Returns the finished process (returncode, stdout, stderr) with ``outdir`` (the
    HTML directory) added. The build's warnings are checked by test_site_build; the
    other tests look at whatever it wrote (``--keep-going`` writes every page).
    """
    import subprocess

    outdir = tmp_path_factory.mktemp("site") / "html"
    proc = subprocess.run(
        [*SITE_BUILD, str(outdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    proc.outdir = outdir
    return proc


@pytest.fixture(scope="session")
def built_site(site_build):
    """The HTML directory of the real site (Path)."""
    if not (site_build.outdir / "index.html").is_file():
        pytest.fail(
            f"the site build wrote no index.html (exit {site_build.returncode}):\n"
            f"{site_build.stderr[-4000:]}"
        )
    return site_build.outdir


# -- A real Jupyter server (tests/jupyter_fixtures.py) ---------------------------

from jupyter_fixtures import jupyter_server, jupyter_server_factory  # noqa: E402, F401

# -- The quick loop ------------------------------------------------------------------

# What makes a test slow: a real server, browser, OOM kill or VM, or the built site.
SLOW_MARKERS = ("browser", "oom", "server", "vm")
SLOW_FIXTURES = ("site_build",)


def pytest_collection_modifyitems(config, items):
    """Mark slow whatever starts a real part, so ``pytest -m "not slow"`` is the quick loop."""
    for item in items:
        if any(item.get_closest_marker(m) for m in SLOW_MARKERS) or any(
            f in getattr(item, "fixturenames", ()) for f in SLOW_FIXTURES
        ):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session):
    """The cgroup v2 VM boots for minutes under TCG: when its tests are selected, begin
    it now, niced, so it runs in the CPU the tests before it leave idle (tests/vm/boot)."""
    if session.config.option.collectonly or not sys.platform.startswith("linux"):
        return
    if not any(item.get_closest_marker("vm") for item in session.items):
        return
    from vm import boot, kernel

    if not kernel.tools_missing():
        boot.prestart()


def pytest_sessionfinish(session):
    if "vm.boot" in sys.modules:
        sys.modules["vm.boot"].stop_early()
