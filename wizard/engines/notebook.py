"""Reading a notebook for ``wizard run``: its code cells, kernel and language; a cell range.

A notebook that cannot be used (missing, not JSON, not a notebook) raises
``UsageError`` with one line; the notebook is only read, never changed.
"""

from __future__ import annotations

import os
from typing import Any

from wizard.base.failure import UsageError
from wizard.base.invocation import command

_KINDS = {0o010000: "a FIFO (named pipe)", 0o020000: "a character device"}
_KINDS.update({0o060000: "a block device", 0o140000: "a socket"})


def load_notebook(path: str) -> dict[str, Any]:
    """The notebook's cells and metadata; UsageError with one line when it cannot be used."""
    import json
    import stat

    shown = path
    try:
        # O_NONBLOCK: a FIFO opens at once instead of waiting for a writer forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            os.close(fd)
            raise
        if stat.S_ISDIR(mode):
            os.close(fd)
            raise IsADirectoryError(21, "Is a directory")
        if not stat.S_ISREG(mode):
            os.close(fd)
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise UsageError(f"{shown}: {kind}, not a notebook file")
        with open(fd, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a folder, not a notebook") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise UsageError(f"{shown}: the file is empty, not a notebook")
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise UsageError(f"{shown}: not a notebook (a notebook is a JSON object)")
    try:
        nb: Any = json.loads(data)
    except UnicodeDecodeError:
        raise UsageError(f"{shown}: not a notebook (not text: a notebook is JSON)") from None
    except ValueError as exc:
        where = ""
        if hasattr(exc, "lineno"):
            err: Any = exc  # a json.JSONDecodeError
            where = f" at line {err.lineno}, column {err.colno}: {err.msg}"
        raise UsageError(f"{shown}: broken JSON{where}; the notebook file is damaged") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        if isinstance(nb, dict) and "worksheets" in nb:
            import shlex

            stem = os.path.splitext(os.path.basename(shown))[0] + "-v4"
            copy = os.path.join(os.path.dirname(shown), stem + ".ipynb")
            raise UsageError(
                f"{shown}: an old (nbformat 3) notebook; open and save it in Jupyter, or "
                f"convert a copy (the original stays as it is): jupyter nbconvert --to notebook "
                f"--output {shlex.quote(stem)} {shlex.quote(shown)}, then "
                f"{command('run', shlex.quote(copy))}"
            )
        raise UsageError(f"{shown}: not a Jupyter notebook (no list of cells)")
    if nb.get("nbformat") != 4:
        raise UsageError(f"{shown}: nbformat {nb.get('nbformat')!r}; only nbformat 4 is read")
    cells: list[dict[str, Any]] = []
    for i, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict):
            raise UsageError(f"{shown}: cell {i} is not a cell object")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise UsageError(f"{shown}: cell {i} has no readable source")
        cells.append({"n": i, "type": cell.get("cell_type"), "source": source})
    meta: Any = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    spec: Any = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    info: Any = meta.get("language_info") if isinstance(meta.get("language_info"), dict) else {}
    language = spec.get("language") or info.get("name")
    return {
        "cells": cells,
        "kernel_name": spec.get("name") if isinstance(spec.get("name"), str) else None,
        "language": language if isinstance(language, str) else None,
    }


def parse_cells(text: str, count: int) -> set[int]:
    """'2-5', '3', '1,4-6', '4-' -> the set of cell numbers; UsageError when unreadable."""
    chosen: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo) if lo else 1
            last = (int(hi) if hi else max(count, first)) if dash else first
        except ValueError:
            raise UsageError(f"--cells {text}: expected numbers like 3, 2-5 or 1,4-6") from None
        if first < 1 or last < first:
            raise UsageError(f"--cells {text}: {part} is not a range of cells from 1 up")
        chosen.update(range(first, last + 1))
    if not chosen:
        raise UsageError(f"--cells {text}: no cells given")
    return chosen


def first_line(source: str, limit: int = 70) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."
