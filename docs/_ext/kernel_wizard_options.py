"""``.. kernel-wizard-server-options::``: the server extension's options, as a table.

Read from the one place they are defined, the ``KernelWizard`` traitlets class in
``wizard/server/config.py``. The class is parsed, not imported, so the site builds
without traitlets installed. Each ``name = Type(default, help=...)`` in the class body
is one row; the build fails if the class has none or an option has no help.
"""

import ast
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.errors import ExtensionError

SOURCE = Path(__file__).resolve().parents[2] / "wizard" / "server" / "config.py"
CLASS = "KernelWizard"


def _text(node):
    """A literal's value, joining implicitly concatenated strings."""
    return ast.literal_eval(node)


def read_options(path=SOURCE):
    """``[(name, type name, default, help)]`` in the order the class defines them."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == CLASS), None)
    if cls is None:
        raise ExtensionError(f"{path}: no class {CLASS}")
    out = []
    for stmt in cls.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            continue
        call = stmt.value
        # name = Type(...).tag(config=True)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            call = call.func.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            continue
        helps = [k.value for k in call.keywords if k.arg == "help"]
        if not helps:
            raise ExtensionError(f"{path}: {CLASS}.{stmt.targets[0].id} has no help")
        default = _text(call.args[0]) if call.args else None
        out.append((stmt.targets[0].id, call.func.id, default, _text(helps[0])))
    if not out:
        raise ExtensionError(f"{path}: {CLASS} defines no options")
    return out


def _default(value):
    if value == "":
        return "(empty)"
    return repr(value) if isinstance(value, str) else str(value)


class ServerOptions(Directive):
    has_content = False

    def run(self):
        env = self.state.document.settings.env
        env.note_dependency(str(SOURCE))
        table = nodes.table(classes=["kernel-wizard-server-options"])
        group = nodes.tgroup(cols=4)
        table += group
        for width in (22, 10, 10, 58):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        body = nodes.tbody()
        group += body

        def row(cells, literal_first):
            r = nodes.row()
            for i, text in enumerate(cells):
                entry = nodes.entry()
                para = nodes.paragraph()
                para += nodes.literal(text=text) if (literal_first and i == 0) else nodes.Text(text)
                entry += para
                r += entry
            return r

        head += row(("Option", "Type", "Default", "What it does"), False)
        for name, kind, default, text in read_options():
            body += row((f"c.{CLASS}.{name}", kind, _default(default), text), True)
        return [table]


def setup(app):
    app.add_directive("kernel-wizard-server-options", ServerOptions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
