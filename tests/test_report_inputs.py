"""What the report accepts from its command line: one clear line and exit 2 for bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BAD = ["garbage", "http://x/a b", "https://ok/\nRead: https://evil/", "ftp://x/", "file:x", ""]
GOOD = ["https://docs.example/kw/", "http://127.0.0.1:8000/", "file:///tmp/html/"]


def wizard(*args):
    return subprocess.run(
        [sys.executable, "-m", "wizard", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.mark.parametrize("command", [[], ["run", "some.ipynb"]], ids=["report", "run"])
@pytest.mark.parametrize("url", BAD)
def test_a_bad_docs_url_is_a_usage_error(command, url):
    r = (
        wizard(*command, "--no-input", "--docs-url", url)
        if not command
        else wizard(*command, "--docs-url", url)
    )
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--docs-url" in lines[0], r.stderr
    assert "evil" not in r.stderr.split("'")[0]


@pytest.mark.parametrize("url", GOOD)
def test_a_good_docs_url_is_used_in_every_read_line(url):
    r = wizard("--no-input", "--docs-url", url)
    assert r.returncode in (0, 1), r.stderr
    reads = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("Read: ")]
    assert reads and all(ln.startswith("Read: " + url) for ln in reads)
