"""The package's shape, as ARCHITECTURE.md draws it: layers, no cycles, small modules.

Read from the source with ``ast``, imports inside functions included, so a lazy
import cannot hide a layer violation or a cycle.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "wizard"

# Bottom to top: a module may import from its own layer and the layers below it.
LAYERS = ["base", "system", "probes", "diagnosis", "engines", "report", "server", "commands"]
# Entry points Jupyter and Python load by name: above every layer.
ENTRY = {"wizard.__main__", "wizard.server_ext"}
# The package itself holds only its version: plain data, importable from every layer.
ROOT_PACKAGE = "wizard"
MAX_LINES = 430
# Text that names the files only the OS layer reads.
OS_PATHS = re.compile(r"^/(proc|sys/fs/cgroup|dev/kmsg)(/|$)")


def modules():
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = path
    return out


MODULES = modules()


def layer_of(name):
    if name in ENTRY:
        return len(LAYERS)
    if name == ROOT_PACKAGE:
        return 0
    part = name.split(".")[1]
    assert part in LAYERS, f"{name} is in no layer of ARCHITECTURE.md"
    return LAYERS.index(part)


def imports_of(name, path):
    """``{(imported module, line)}`` and ``[(name, line)]`` of private names taken."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found, private = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("wizard"):
                    found.add((a.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base])
            if not base.startswith("wizard"):
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in MODULES:
                    found.add((full, node.lineno))
                else:
                    found.add((base, node.lineno))
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        private.append((f"{base}.{a.name}", node.lineno))
    return found, private


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_from_its_layer_and_below(name):
    own = layer_of(name)
    bad = [
        f"{name}:{line} imports {other}"
        for other, line in GRAPH[name][0]
        if other in MODULES and layer_of(other) > own
    ]
    assert not bad, "\n".join(bad)


def test_no_private_name_is_used_outside_its_module():
    used = [f"{name}:{line} takes {what}" for name in MODULES for what, line in GRAPH[name][1]]
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wizard"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                used.append(f"{name}:{node.lineno} takes {aliases[node.value.id]}.{node.attr}")
    assert not used, "\n".join(used)


def test_no_import_cycle():
    edges = {n: {o for o, _ in GRAPH[n][0] if o in MODULES and o != n} for n in MODULES}
    # packages import nothing of their own here, so an edge to a package is to its __init__
    seen, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append([*stack[stack.index(n) :], n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for m in sorted(edges[n]):
            visit(m)
        stack.pop()

    for n in sorted(edges):
        visit(n)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by what it holds"


def test_only_the_os_layer_names_proc_cgroup_and_kernel_log_files():
    """String constants naming /proc, cgroup files or /dev/kmsg live in wizard/system."""
    bad = []
    for name, path in MODULES.items():
        if name.startswith("wizard.system"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and OS_PATHS.match(node.value)
            ):
                bad.append(f"{name}:{node.lineno} {node.value!r}")
    assert not bad, "\n".join(bad)


def test_the_map_names_every_layer():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for layer in LAYERS:
        assert f"`wizard/{layer}/`" in text, layer
    # every module file is mentioned by name, so the map stays true as modules come and go
    missing = [
        p.stem for p in PKG.rglob("*.py") if p.name != "__init__.py" and f"{p.stem}" not in text
    ]
    assert not missing, f"ARCHITECTURE.md does not mention: {', '.join(sorted(missing))}"
