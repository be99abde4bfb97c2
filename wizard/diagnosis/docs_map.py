"""Every section of the site the wizard points to: label -> (page, title).

This is the one list. The site's build checks that each label exists on the page
named here (see ``docs/_ext/wizard_site.py``), and the tests check it against the
built ``objects.inv``, so a renamed section breaks the build, not the user.
"""

import os
from pathlib import Path
from typing import Optional

# The published site. ``--docs-url`` or ``WIZARD_DOCS_URL`` point at any other copy.
DEFAULT_DOCS_URL = "https://kernel-wizard.readthedocs.io/en/latest/"
# The built site inside the installed package: the wheel the site offers carries it
# (docs/_ext/wizard_wheel.py puts it there), a source checkout or wizard.pyz does not.
# The Jupyter server extension serves it (wizard/server/docs_site.py); without a public
# URL the command line links to it.
INSTALLED_SITE = Path(__file__).resolve().parent.parent / "docs_html"

LABELS = {
    "kernel-died": ("index", "My Jupyter kernel died"),
    "by-message": ("by-message", "By message"),
    "jupyter-kernel-terminated": ("jupyter-kernel-terminated", "Jupyter kernel terminated"),
    "kernel-terminated-memory": (
        "jupyter-kernel-terminated",
        "Is it caused by using up too much memory?",
    ),
    "kernel-terminated-other": ("jupyter-kernel-terminated", "Is it caused by something else?"),
    "kernel-terminated-eliminate-jupyter": (
        "jupyter-kernel-terminated",
        "Step 1: try to eliminate Jupyter",
    ),
    "kernel-terminated-eliminate-ui": (
        "jupyter-kernel-terminated",
        "Step 2: try to eliminate the user interface",
    ),
    "low-memory": ("low-memory", "Low memory problems"),
    "low-memory-inspect": ("low-memory", "See what uses memory"),
    "low-memory-free": ("low-memory", "Free memory"),
    "too-many-processes": ("low-memory", "Too many processes"),
    "jupyter-halt": ("jupyter-halt", "Shut down a kernel"),
    "plain-jupyter-server": ("plain-jupyter-server", "Plain Jupyter server"),
    "kernel-cannot-start": ("jupyter-kernel-terminated", "A kernel that cannot start"),
    "kernel-signals": ("kernel-signals", "What the message says"),
    "wizard": ("wizard", "The troubleshooting wizard"),
    "wizard-run": ("wizard", "Run a notebook outside Jupyter"),
    "wizard-halt": ("wizard", "Free memory: halt kernels"),
    "wizard-watch": ("wizard", "Record how kernels die"),
    "wizard-checks": ("wizard", "What the wizard checks"),
    "wizard-json": ("wizard-reference", "JSON output"),
    "wizard-exit-codes": ("wizard", "Exit codes"),
    "fleet-oom-group": ("fleet", "One kernel takes the whole server down: memory.oom.group"),
}


def installed_site() -> Optional[Path]:
    """The installed copy of the site (its folder), or None when this install has none."""
    try:
        return INSTALLED_SITE if (INSTALLED_SITE / "index.html").is_file() else None
    except OSError:  # inside a zip (wizard.pyz) or an unreadable folder
        return None


def checked_base(text: str) -> str:
    """``--docs-url``: an http(s) or file URL with no whitespace or control character, or
    ValueError (argparse makes that a usage error): it is printed into every "Read:" line."""
    import urllib.parse

    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("not a URL: it holds a space, a newline or a control character")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return text
    if parts.scheme.lower() == "file" and parts.path.startswith("/"):
        return text
    raise ValueError("expected an http://, https:// or file:/// URL of the site")


def docs_base(override=None):
    """The site's base URL, always ending in ``/``.

    ``--docs-url``, then ``WIZARD_DOCS_URL``, then the installed copy (a ``file://`` URL,
    which opens on the machine the wizard runs on), then the published site.
    """
    base = override or os.environ.get("WIZARD_DOCS_URL")
    if not base:
        local = installed_site()
        base = local.as_uri() if local else DEFAULT_DOCS_URL
    return base if base.endswith("/") else base + "/"


def url_for(label, base=None):
    """The URL of a label's section: ``BASE/PAGE.html#LABEL``.

    Sphinx gives a labelled section the label itself as an element id, so the
    anchor needs no lookup. Signal rows use ids of the form ``signal-NAME``, the
    by-message page's entries ``msg-NAME`` (``messages.MESSAGES``).
    """
    if label.startswith("signal-") or label.startswith("exit-"):
        page = LABELS["kernel-signals"][0]
    elif label.startswith("msg-"):  # an entry of messages.MESSAGES
        page = LABELS["by-message"][0]
    else:
        page = LABELS[label][0]
    return f"{docs_base(base)}{page}.html#{label}"
