"""Questions on a terminal: answers come from the context's stdin; end of input is the default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from wizard.report.context import Context
    from wizard.report.printer import Printer


class Asker:
    """Reads answers from the context's stdin; end of input means 'use the default'."""

    def __init__(self, ctx: Context, printer: Printer) -> None:
        self.ctx = ctx
        self.p = printer

    def ask(self, prompt: str) -> str:
        self.ctx.stdout.write(prompt)
        self.ctx.stdout.flush()
        line: str = self.ctx.stdin.readline()
        if not line:
            self.p.line()
            return ""
        return line.strip()

    def yes(self, prompt: str, default: bool = False) -> bool:
        suffix = " [Y/n] " if default else " [y/N] "
        answer = self.ask(prompt + suffix).lower()
        if not answer:
            return default
        return answer in ("y", "yes")


def ask_terminal(ctx: Context) -> Callable[[str], bool]:
    """A yes/no question on the context's terminal (end of input: no)."""

    def ask(question: str) -> bool:
        ctx.stdout.write(question + " [y/N] ")
        ctx.stdout.flush()
        line: str = ctx.stdin.readline()
        if not line:
            ctx.stdout.write("\n")
        return line.strip().lower() in ("y", "yes")

    return ask
