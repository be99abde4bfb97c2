"""Sphinx extension for the kernel-died site: wizard box, wizard.pyz, single-source tables.

What it adds:

- a box "Kernel died? Run the wizard" right below the title of every page made from a
  document, whatever the theme (not on the search page or the general index), kept out of
  the search results' snippets (``_static/wizard-site.js``, which conf.py loads);
- ``.. wizard-moved:: LABEL``: what stays on a page a section moved away from, an anchor
  with the old id and a link to the section's new place, so a URL the wizard printed
  before the move still lands; the label check accepts it;
- ``wizard.pyz`` (a zipapp of the wizard package) in the root of the HTML output, so the
  site has a stable download URL ``<site>/wizard.pyz``;
- directives that render the wizard's own tables, so the pages cannot drift from the code:
  ``wizard-signals`` (``signals.SIGNALS``), ``wizard-findings`` (``rules.RULES``),
  ``wizard-checks`` (``rules.CHECKS``), ``wizard-exit-codes`` (a command's ``EXIT_CODES``) and
  ``wizard-options`` (each command's own argument parser);
- ``.. wizard-paste-box::``: the "Paste your message" form, with the table of message
  patterns (``messages.site_table()``, the one the wizard's ``--banner`` reads) embedded as
  JSON for ``_static/wizard-site.js``; without JavaScript it opens the by-message page;
- ``.. wizard-message-versions::``: which versions each message's wording was checked
  against, from the same table;
- a check that every label the wizard links to (``docs_map.LABELS``) exists on the page
  named there, and that every message of the table is an entry of the by-message page
  under its own heading (and every entry there is in the table), as warnings, so ``-W``
  fails the build.

The tables come from the package named by the ``wizard_site_package`` setting ("wizard").
"""

import html
import importlib
import io
import json
import os
import re
import zipfile
from pathlib import Path

import wizard_wheel
from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

HTML_BUILDERS = frozenset({"html", "dirhtml", "singlehtml"})
PYZ_NAME = "wizard.pyz"
DOCS_MAP = "wizard/diagnosis/docs_map.py"  # named in the label check's warnings
BOX_ID = "wizard-box"
BOX_TITLE = "Kernel died? Run the wizard"
# Zip entries get this timestamp so the same sources give the same wizard.pyz.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _module(config, name):
    return importlib.import_module(f"{config.wizard_site_package}.{name}")


# -- The box ------------------------------------------------------------------

# The end of the page's title in a document's body: the box goes right after it.
TITLE_END = re.compile(r"</h1>")


def box_html(pyz_href, wizard_href=None):
    """The box's HTML; the hrefs are relative to the page it goes on."""
    more = (
        f' <a class="wizard-box-more" href="{html.escape(wizard_href)}">How to read its answer</a>'
        if wizard_href
        else ""
    )
    return (
        f'<aside class="wizard-box" id="{BOX_ID}" aria-labelledby="{BOX_ID}-title">'
        f'<p><strong class="wizard-box-title" id="{BOX_ID}-title">'
        f"{html.escape(BOX_TITLE)}</strong> "
        f'Download <a class="wizard-box-download" href="{html.escape(pyz_href)}" download>'
        f"{PYZ_NAME}</a>, then, in a terminal on the machine where the kernel ran: "
        f'<code class="wizard-box-command">python3 {PYZ_NAME}</code>'
        '<span class="wizard-box-installed"> (installed: <code>python -m wizard</code>)</span>.'
        f"{more}</p></aside>\n"
    )


def insert_box(body, box):
    """``body`` with ``box`` right after its title (at its start when it has none)."""
    match = TITLE_END.search(body)
    if match is None:
        return box + body
    return body[: match.end()] + box + body[match.end() :]


def _wizard_docname(app):
    try:
        page = _module(app.config, "diagnosis.docs_map").LABELS["wizard"][0]
    except (ImportError, KeyError):
        page = "wizard"
    return page if page in app.env.found_docs else None


def on_html_page_context(app, pagename, templatename, context, doctree):
    # Pages made from templates alone (genindex, search, domain indices) have no body
    # and get no box: a reader there is looking for a page, not for the wizard.
    if app.builder.name not in HTML_BUILDERS or "body" not in context or doctree is None:
        return
    pathto = context["pathto"]
    docname = _wizard_docname(app)
    more = pathto(docname) if docname and docname != pagename else None
    context["body"] = insert_box(context["body"], box_html(pathto(PYZ_NAME, 1), more))


# -- wizard.pyz ---------------------------------------------------------------


def _package_files(pkgdir):
    for path in sorted(pkgdir.rglob("*")):
        rel = path.relative_to(pkgdir.parent)
        if not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        yield rel.as_posix(), path


def _zip_entry(name):
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o100644 << 16
    return info


def build_pyz(pkgdir, dest, main):
    """Write a zipapp of the package at ``pkgdir`` to ``dest``; ``main`` is "module:function".

    Like ``zipapp.create_archive``, but deterministic: entries sorted, fixed
    timestamps and modes. ``main`` must call ``sys.exit`` itself for the exit code to
    reach the shell (the generated ``__main__`` drops its return value, as zipapp's does).
    """
    pkgdir, dest = Path(pkgdir), Path(dest)
    module, function = main.split(":")
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            _zip_entry("__main__.py"),
            f"# -*- coding: utf-8 -*-\nimport {module}\n{module}.{function}()\n",
        )
        for name, path in _package_files(pkgdir):
            zf.writestr(_zip_entry(name), path.read_bytes())
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest


def _write_pyz(app):
    package = importlib.import_module(app.config.wizard_site_package)
    pkgdir = Path(package.__file__).resolve().parent
    main = f"{app.config.wizard_site_package}.commands.cli:main"
    build_pyz(pkgdir, Path(app.outdir) / PYZ_NAME, main)
    logger.info("wizard.pyz: %s from %s", Path(app.outdir) / PYZ_NAME, pkgdir)


def _write_packages(app):
    """The wheel (with this site in it) and the source archive, beside wizard.pyz."""
    root = Path(app.confdir)
    if not wizard_wheel.is_project(root):
        return  # a site without a Python project beside its conf.py (the tests' roots)
    try:
        wheel = wizard_wheel.build_site_wheel(root, app.outdir)
        sdist = wizard_wheel.build_sdist(root, app.outdir)
    except ImportError as exc:
        logger.warning(
            "wizard wheel: %s (the docs extra installs hatchling)",
            exc,
            type="wizard_site",
            subtype="wheel",
        )
        return
    logger.info("wizard wheel: %s, %s", wheel, sdist)


def on_build_finished(app, exception):
    if exception is not None or app.builder.name not in HTML_BUILDERS:
        return
    _write_pyz(app)
    _write_packages(app)


# -- Tables -------------------------------------------------------------------


def _para(*children):
    return nodes.paragraph("", "", *children)


# Command-line options in the tables' prose ("with --deep"): shown as code, which also
# keeps smart quotes from turning "--" into a dash.
OPTION = re.compile(r"(?<![\w-])(--?[a-z][\w-]*)")


def _text(value):
    para = _para()
    for i, part in enumerate(OPTION.split(value)):
        if i % 2:
            para += nodes.literal(part, part)
        elif part:
            para += nodes.Text(part)
    return para


def _ref(env, label):
    """A ``:ref:`label``` (the section title as text), checked like any other ref."""
    xref = addnodes.pending_xref(
        "",
        nodes.inline(label, label),
        refdomain="std",
        reftype="ref",
        reftarget=label,
        refexplicit=False,
        refwarn=True,
        refdoc=env.docname,
    )
    return _para(xref)


class _TableDirective(SphinxDirective):
    has_content = False
    module = ""

    def command_module(self, command):
        """The module of a wizard command ("" is the main report), from the registry."""
        commands = self.load("COMMANDS")
        if command and command not in commands:
            raise self.error(f"{self.name}: no command {command!r} in the registry")
        modname = commands[command][0] if command else self.load("MAIN")
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            raise self.error(f"{self.name}: cannot import {modname}: {exc}") from exc
        self.env.note_dependency(mod.__file__)
        return mod

    def load(self, name):
        modname = f"{self.config.wizard_site_package}.{self.module}"
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            raise self.error(f"{self.name}: cannot import {modname}: {exc}") from exc
        if getattr(mod, "__file__", None):
            self.env.note_dependency(mod.__file__)
        try:
            return getattr(mod, name)
        except AttributeError as exc:
            raise self.error(f"{self.name}: {modname} has no {name}") from exc

    def claim_id(self, node_id, node):
        document = self.state.document
        if node_id in document.ids:
            raise self.error(f"{self.name}: id {node_id!r} is already used on this page")
        node["ids"].append(node_id)
        document.ids[node_id] = node

    def note_label(self, name, node_id, title):
        std = self.env.get_domain("std")
        std.note_hyperlink_target(name, self.env.docname, node_id, title)

    def table(self, headers, rows, kind):
        """rows: (node_id or None, [cell paragraphs]); returns the table and its rows."""
        table = nodes.table(classes=["wizard-table", f"wizard-{kind}", "colwidths-auto"])
        tgroup = nodes.tgroup(cols=len(headers))
        table += tgroup
        for _ in headers:
            tgroup += nodes.colspec(colwidth=1)
        head = nodes.row()
        for header in headers:
            head += nodes.entry("", _text(header))
        tgroup += nodes.thead("", head)
        body = nodes.tbody()
        tgroup += body
        for node_id, cells in rows:
            row = nodes.row()
            if node_id:
                self.claim_id(node_id, row)
            for cell in cells:
                row += nodes.entry("", cell)
            body += row
        return table


class SignalsDirective(_TableDirective):
    """``.. wizard-signals::``: how a kernel ended, one anchored and labelled row each."""

    module = "diagnosis.signals"

    def run(self):
        rows = []
        for sig in self.load("SIGNALS"):
            is_signal = sig["number"] is not None
            name = nodes.literal(sig["name"], sig["name"]) if is_signal else nodes.Text(sig["name"])
            rows.append(
                (
                    sig["anchor"],
                    [
                        _para(name),
                        _text(str(sig["number"]) if is_signal else "—"),
                        _text(str(sig["status"]) if sig["status"] is not None else "—"),
                        _text(sig["meaning"]),
                        _ref(self.env, sig["next"]),
                    ],
                )
            )
            title = (
                f"{sig['name']} (signal {sig['number']}, exit status {sig['status']})"
                if is_signal
                else sig["name"][:1].upper() + sig["name"][1:]
            )
            self.note_label(sig["anchor"], sig["anchor"], title)
        headers = ["Signal", "Number", "Exit status in a shell", "What it most likely means"]
        return [self.table([*headers, "Read next"], rows, "signals")]


class FindingsDirective(_TableDirective):
    """``.. wizard-findings::``: every finding the wizard can report (``rules.RULES``)."""

    module = "diagnosis.rules"

    def run(self):
        rows = []
        for rule in self.load("RULES"):
            node_id = f"finding-{rule['id']}"
            rows.append(
                (
                    node_id,
                    [
                        _para(nodes.literal(rule["id"], rule["id"])),
                        _text(rule["severity"]),
                        _text(rule["when"]),
                        _ref(self.env, rule["doc_label"]),
                    ],
                )
            )
            self.note_label(node_id, node_id, f"Finding {rule['id']}")
        return [self.table(["Finding", "Severity", "When", "Read"], rows, "findings")]


class ChecksDirective(_TableDirective):
    """``.. wizard-checks::``: what the wizard looks at (``rules.CHECKS``), a definition list."""

    module = "diagnosis.rules"

    def run(self):
        rules = self.load("RULES")
        dlist = nodes.definition_list(classes=["wizard-checks"])
        for check in self.load("CHECKS"):
            term = nodes.term("", check["title"] + " (", nodes.literal(check["id"], check["id"]))
            term += nodes.Text(")")
            self.claim_id(f"check-{check['id']}", term)
            definition = nodes.definition("", _text(check["what"]))
            found = [r["id"] for r in rules if r["check"] == check["id"]]
            if found:
                para = _text("Findings: ")
                for i, finding in enumerate(found):
                    if i:
                        para += nodes.Text(", ")
                    para += nodes.literal(finding, finding)
                para += nodes.Text(".")
                definition += para
            dlist += nodes.definition_list_item("", term, definition)
        return [dlist]


class ExitCodesDirective(_TableDirective):
    """``.. wizard-exit-codes:: [COMMAND]``: a command's exit codes (its ``EXIT_CODES``).

    Without an argument, the main report's; rows get ids ``wizard-exit-CODE`` (for a
    sub-command ``wizard-COMMAND-exit-CODE``).
    """

    module = "commands.registry"
    optional_arguments = 1

    def run(self):
        command = self.arguments[0] if self.arguments else ""
        mod = self.command_module(command)
        prefix = f"wizard-{command}-exit" if command else "wizard-exit"
        rows = [
            (f"{prefix}-{code}", [_para(nodes.literal(str(code), str(code))), _text(meaning)])
            for code, meaning in sorted(mod.EXIT_CODES.items())
        ]
        return [self.table(["Exit code", "Meaning"], rows, "exit-codes")]


class OptionsDirective(_TableDirective):
    """``.. wizard-options:: [COMMAND]``: a command's options, read from its own parser.

    Without an argument, the main report's parser; with one, the
    module the registry names for that sub-command (its ``build_parser``).
    """

    module = "commands.registry"
    optional_arguments = 1

    def run(self):
        command = self.arguments[0] if self.arguments else ""
        build = self.command_module(command).build_parser
        try:
            parser = build()
        except Exception as exc:  # a broken parser is a build error, said on one line
            raise self.error(f"{self.name}: building the parser failed: {exc!r}") from exc
        rows = []
        for action in parser._actions:  # argparse keeps no public list of its options
            if action.help == "==SUPPRESS==":
                continue
            if action.option_strings:
                metavar = ""
                if action.nargs != 0:
                    metavar = " " + (action.metavar or action.dest.upper())
                shown = ", ".join(f"{o}{metavar}" for o in action.option_strings)
            else:
                shown = action.metavar or action.dest.upper()
                if action.nargs in ("*", "+"):
                    shown += " ..."
            cell = _para(nodes.literal(shown, shown))
            rows.append((None, [cell, _text(action.help or "")]))
        kind = f"options-{command or 'main'}"
        return [self.table(["Option", "What it does"], rows, kind)]


# -- The paste box -----------------------------------------------------------------

MESSAGES_PAGE = "by-message"
PASTE_ID = "wizard-paste"


def paste_box_html(page_href, pyz_href, table):
    """The form; ``table`` is ``messages.site_table()``, embedded for the script."""
    data = json.dumps(table, ensure_ascii=True, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<form class="wizard-paste" id="{PASTE_ID}" action="{html.escape(page_href)}" '
        f'method="get" role="search" aria-labelledby="{PASTE_ID}-label" '
        f'data-pyz="{html.escape(pyz_href)}">'
        f'<label id="{PASTE_ID}-label" for="{PASTE_ID}-text"><strong>Paste your message</strong>'
        " as your screen, log or terminal shows it (several lines are fine):</label>"
        f'<span class="wizard-paste-row"><textarea id="{PASTE_ID}-text" name="q" rows="2" '
        'spellcheck="false" autocomplete="off" '
        'placeholder="The kernel for analysis.ipynb appears to have died."></textarea>'
        '<button type="submit">Find it</button></span>'
        f'<div class="wizard-paste-result" id="{PASTE_ID}-result" role="status" '
        'aria-live="polite"></div></form>'
        f'<script type="application/json" id="wizard-messages">{data}</script>\n'
    )


class PasteBoxDirective(_TableDirective):
    """``.. wizard-paste-box::``: paste a message, go to its entry on the by-message page."""

    module = "diagnosis.messages"

    def run(self):
        table = self.load("site_table")()
        builder = self.env.app.builder
        try:
            page = builder.get_target_uri(MESSAGES_PAGE)
            here = builder.get_target_uri(self.env.docname)
        except Exception:  # builders without pages (e.g. linkcheck) get the plain name
            page, here = f"{MESSAGES_PAGE}.html", f"{self.env.docname}.html"
        depth = here.count("/")
        up = "../" * depth
        raw = nodes.raw("", paste_box_html(up + page, up + PYZ_NAME, table), format="html")
        return [raw]


class DownloadsDirective(SphinxDirective):
    """``.. wizard-downloads::``: the wheel and the source archive the build makes, and the
    command that installs the wheel (names from pyproject.toml, as hatchling spells them)."""

    has_content = False

    def run(self):
        root = Path(self.env.app.confdir)
        if not wizard_wheel.is_project(root):
            raise self.error(f"{self.name}: no pyproject.toml with a [project] in {root}")
        self.env.note_dependency(str(root / "pyproject.toml"))
        wheel, sdist = wizard_wheel.file_names(root)
        para = _para(nodes.Text("Download the package, "))
        para += nodes.reference(wheel, "", nodes.literal(wheel, wheel), refuri=wheel)
        para += nodes.Text(" (its source: ")
        para += nodes.reference(sdist, "", nodes.literal(sdist, sdist), refuri=sdist)
        para += nodes.Text("), or install it straight from this site:")
        command = f"$ python -m pip install SITE_URL/{wheel}"
        block = nodes.literal_block(command, command, language="console")
        return [para, block]


class MessageVersionsDirective(_TableDirective):
    """``.. wizard-message-versions::``: each message and what its wording was checked against."""

    module = "diagnosis.messages"

    def run(self):
        rows = [
            (
                None,
                [_ref(self.env, m["id"]), _text(m["checked"])],
            )
            for m in self.load("MESSAGES")
        ]
        return [self.table(["Message", "Wording checked against"], rows, "message-versions")]


def message_problems(table, std_labels, page=MESSAGES_PAGE):
    """The paste table against the by-message page, one line each (both ways)."""
    problems = []
    ids = {m["id"] for m in table}
    for m in table:
        docname, _node, title = std_labels.get(m["id"], ("", "", ""))
        if docname != page:
            problems.append(f"message {m['id']!r} (messages.py) has no entry on page {page!r}")
        elif title != m["heading"]:
            problems.append(
                f"message {m['id']!r}: the page's heading {title!r} differs from the table's "
                f"{m['heading']!r}"
            )
    for label, (docname, _node, _title) in sorted(std_labels.items()):
        if docname == page and label.startswith("msg-") and label not in ids:
            problems.append(f"entry {label!r} of page {page!r} is not in messages.MESSAGES")
    return problems


# -- Moved sections ---------------------------------------------------------------


class MovedDirective(SphinxDirective):
    """``.. wizard-moved:: LABEL``: the section LABEL was here and now is elsewhere.

    Leaves an element with the old id (``#LABEL``) and a link to the new place, and
    notes the page, so that ``docs_map`` may still name this page for the label.
    """

    required_arguments = 1
    has_content = False

    def run(self):
        label = self.arguments[0]
        para = _para(nodes.Text("This section has moved: see "))
        para += _ref(self.env, label).children[0]
        para += nodes.Text(".")
        para["classes"].append("wizard-moved")
        document = self.state.document
        if label in document.ids:
            raise self.error(f"{self.name}: id {label!r} is already used on this page")
        para["ids"].append(label)
        document.ids[label] = para
        moved = self.env.domaindata.setdefault("wizard_site", {}).setdefault("moved", {})
        moved[label] = self.env.docname
        return [para]


def _moved(env):
    return env.domaindata.get("wizard_site", {}).get("moved", {})


def on_env_purge_doc(app, env, docname):
    moved = _moved(env)
    for label in [label for label, doc in moved.items() if doc == docname]:
        del moved[label]


def on_env_merge_info(app, env, docnames, other):
    moved = env.domaindata.setdefault("wizard_site", {}).setdefault("moved", {})
    moved.update({label: doc for label, doc in _moved(other).items() if doc in docnames})


# -- Label consistency ----------------------------------------------------------


def label_problems(labels, std_labels, moved=None):
    """Problems with the wizard's labels, one line each.

    ``labels``: docs_map.LABELS (label -> (page, title)); ``std_labels``: the std
    domain's labels (label -> (docname, node id, title)). The wizard builds
    ``PAGE.html#LABEL``, so the label must be on that page with the label as its id,
    or the page must keep a ``wizard-moved`` anchor for it (``moved``: label -> page).
    """
    moved = moved or {}
    problems = []
    for label, (page, _title) in sorted(labels.items()):
        docname, node_id, _section = std_labels.get(label, ("", "", ""))
        if not docname:
            problems.append(
                f"label {label!r} ({DOCS_MAP}) is not defined; it belongs on page {page!r}"
            )
        elif docname != page and moved.get(label) == page:
            continue  # the old URL lands on the anchor left behind, which links on
        elif docname != page:
            problems.append(f"label {label!r} is on page {docname!r}, but {DOCS_MAP} says {page!r}")
        elif node_id != label:
            problems.append(
                f"label {label!r} on page {page!r} has the anchor {node_id!r}; the wizard "
                f"links to #{label} (use lower case and hyphens)"
            )
    return problems


def on_env_check_consistency(app, env):
    try:
        labels = _module(app.config, "diagnosis.docs_map").LABELS
    except (ImportError, AttributeError) as exc:
        logger.warning("wizard labels: cannot load docs_map.LABELS: %s", exc, type="wizard_site")
        return
    for problem in label_problems(labels, env.get_domain("std").labels, _moved(env)):
        logger.warning("wizard labels: %s", problem, type="wizard_site", subtype="labels")
    if MESSAGES_PAGE not in env.found_docs:
        return
    try:
        table = _module(app.config, "diagnosis.messages").MESSAGES
    except (ImportError, AttributeError) as exc:
        logger.warning("wizard messages: cannot load MESSAGES: %s", exc, type="wizard_site")
        return
    for problem in message_problems(table, env.get_domain("std").labels):
        logger.warning("wizard messages: %s", problem, type="wizard_site", subtype="messages")


def setup(app):
    app.add_config_value("wizard_site_package", "wizard", "env", types=frozenset({str}))
    app.add_directive("wizard-signals", SignalsDirective)
    app.add_directive("wizard-findings", FindingsDirective)
    app.add_directive("wizard-checks", ChecksDirective)
    app.add_directive("wizard-exit-codes", ExitCodesDirective)
    app.add_directive("wizard-options", OptionsDirective)
    app.add_directive("wizard-moved", MovedDirective)
    app.add_directive("wizard-paste-box", PasteBoxDirective)
    app.add_directive("wizard-message-versions", MessageVersionsDirective)
    app.add_directive("wizard-downloads", DownloadsDirective)
    app.connect("env-purge-doc", on_env_purge_doc)
    app.connect("env-merge-info", on_env_merge_info)
    app.connect("html-page-context", on_html_page_context)
    app.connect("env-check-consistency", on_env_check_consistency)
    app.connect("build-finished", on_build_finished)
    return {
        "version": "1",
        "env_version": 2,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
