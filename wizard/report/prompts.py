"""Questions on a terminal: answers come from the context's stdin; end of input is the default."""


class Asker:
    """Reads answers from the context's stdin; end of input means 'use the default'."""

    def __init__(self, ctx, printer):
        self.ctx = ctx
        self.p = printer

    def ask(self, prompt):
        self.ctx.stdout.write(prompt)
        self.ctx.stdout.flush()
        line = self.ctx.stdin.readline()
        if not line:
            self.p.line()
            return ""
        return line.strip()

    def yes(self, prompt, default=False):
        suffix = " [Y/n] " if default else " [y/N] "
        answer = self.ask(prompt + suffix).lower()
        if not answer:
            return default
        return answer in ("y", "yes")


def ask_terminal(ctx):
    """A yes/no question on the context's terminal (end of input: no)."""

    def ask(question):
        ctx.stdout.write(question + " [y/N] ")
        ctx.stdout.flush()
        line = ctx.stdin.readline()
        if not line:
            ctx.stdout.write("\n")
        return line.strip().lower() in ("y", "yes")

    return ask
