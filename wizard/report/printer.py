"""Printing for people: marks, colour, bold, and aligned tables."""

MARKS_UNICODE = {"ok": "✓", "problem": "✗", "warning": "!", "info": "•", "error": "?"}
MARKS_ASCII = {"ok": "+", "problem": "x", "warning": "!", "info": "-", "error": "?"}
COLORS = {"ok": "32", "problem": "31", "warning": "33", "info": "36", "error": "35"}


class Printer:
    def __init__(self, ctx):
        self.out = ctx.stdout
        self.color = ctx.color
        self.marks = MARKS_UNICODE if ctx.unicode else MARKS_ASCII

    def line(self, text=""):
        self.out.write(text + "\n")

    def paint(self, text, code):
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text):
        return self.paint(text, "1")

    def mark(self, status):
        return self.paint(f"[{self.marks[status]}]", COLORS[status])


def table(p, header, rows, indent="      "):
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    p.line(indent + "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        p.line(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
