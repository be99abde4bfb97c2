"""Printing for people: marks, colour, bold, and aligned tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.report.context import Context

MARKS_UNICODE = {"ok": "✓", "problem": "✗", "warning": "!", "info": "•", "error": "?"}
MARKS_ASCII = {"ok": "+", "problem": "x", "warning": "!", "info": "-", "error": "?"}
COLORS = {"ok": "32", "problem": "31", "warning": "33", "info": "36", "error": "35"}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What a wrapped line's next lines line up under: indent, "1. ", and a "[✓] " mark.
_LEAD = re.compile(r"^(\s*(?:\d+\.\s+)?(?:(?:\x1b\[[0-9;]*m)*\[.\](?:\x1b\[[0-9;]*m)*\s+)?)")


def visible(text: str) -> int:
    return len(_ANSI.sub("", text))


def wrap(text: str, width: int | None) -> list[str]:
    """``text`` in lines of at most ``width`` columns, at spaces, the next lines under the
    text after the mark. Commands (``$ ...``), table rows and words longer than a line
    (a URL) are never broken."""
    if width is None or visible(text) <= width:
        return [text]
    m = _LEAD.match(text)
    lead = m.group(1) if m else ""
    body = text[len(lead) :]
    if body.startswith("$ ") or "  " in body.strip() or len(body.split()) <= 3:
        return [text]
    under = " " * visible(lead)
    lines: list[str] = []
    cur, used = lead, visible(lead)
    for word in body.split(" "):
        n = visible(word)
        if used + n > width and cur.strip():
            lines.append(cur.rstrip())
            cur, used = under, len(under)
        cur += word + " "
        used += n + 1
    lines.append(cur.rstrip())
    return lines


class Printer:
    def __init__(self, ctx: Context) -> None:
        self.out = ctx.stdout
        self.color = ctx.color
        self.marks = MARKS_UNICODE if ctx.unicode else MARKS_ASCII
        # On a terminal, long lines are wrapped to its width instead of being cut.
        self.width: int | None = None
        if getattr(ctx, "stdout_isatty", False):
            import shutil

            # 0 when the terminal does not say (a pty nobody sized): then nothing is wrapped
            columns = shutil.get_terminal_size(fallback=(0, 0)).columns
            self.width = max(columns - 1, 40) if columns > 0 else None

    def line(self, text: str = "") -> None:
        self.out.write("\n".join(wrap(text, self.width)) + "\n")

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self.paint(text, "1")

    def mark(self, status: str) -> str:
        return self.paint(f"[{self.marks[status]}]", COLORS[status])


def table(
    p: Printer, header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "      "
) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    p.line(indent + "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        p.line(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
