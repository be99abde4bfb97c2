"""The wizard on a terminal: the site's questions in order, with the evidence for each.

1. What did the message say?          (kernel-signals)
2. Did you stop the kernel yourself?  (then nothing is wrong)
3. Is it memory?                      (kernel-terminated-memory)
4. Something else?                    (kernel-terminated-other: without Jupyter, then
                                       without the usual interface)
"""

from wizard.base import exitcodes
from wizard.commands.base import findings_exit_code
from wizard.diagnosis import banner as banner_mod
from wizard.diagnosis import docs_map, rules
from wizard.diagnosis import idle as idle_rule
from wizard.report import text as render_text
from wizard.report.printer import Printer
from wizard.report.prompts import Asker

STEPS = 4


def step(p, n, title, label, base):
    p.line()
    p.line(p.bold(f"Step {n} of {STEPS}: {title}"))
    p.line(f"  ({docs_map.url_for(label, base)})")


def ask_banner(asker, p):
    p.line("  Which message did you see?")
    for i, (text, where) in enumerate(banner_mod.CHOICES, 1):
        p.line(f"    {i}) {text}  [{where}]")
    other = len(banner_mod.CHOICES) + 1
    p.line(f"    {other}) Something else: paste it")
    p.line(f"    {other + 1}) I don't know / no message")
    while True:
        answer = asker.ask(f"  Choose 1-{other + 1} (Enter: I don't know): ")
        if not answer or answer == str(other + 1):
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(banner_mod.CHOICES):
            return banner_mod.parse(banner_mod.CHOICES[int(answer) - 1][0])
        if answer == str(other):
            text = asker.ask("  Paste the message: ")
            return banner_mod.parse(text) if text else None
        if not answer.isdigit():  # pasted straight away
            return banner_mod.parse(answer)
        p.line(f"  Please answer with a number from 1 to {other + 1}.")


def session(ctx, args, answers, base):
    from wizard import __version__
    from wizard.probes.collect import gather

    p = Printer(ctx)
    asker = Asker(ctx, p)
    p.line(p.bold(f"Kernel wizard {__version__}: why did the kernel die?"))
    p.line("  Answer a few questions; Enter keeps the default. Ctrl-C stops at any time.")

    step(p, 1, "What did the message say?", "kernel-signals", base)
    if answers["banner"] is None:
        answers["banner"] = ask_banner(asker, p)
    b = answers["banner"]
    if b and b.get("row"):
        p.line(f"  {render_text.summary_banner({'banner': b})}.")
        p.line(f"  ({docs_map.url_for(b['row']['anchor'], base)})")
    else:
        p.line("  No cause named: the evidence on this machine will tell.")

    step(p, 2, "Did you stop the kernel yourself?", "jupyter-kernel-terminated", base)
    if asker.yes("  Did you restart, shut down or interrupt the kernel just before?"):
        answers["intentional"] = True
        p.line("  Then nothing is wrong: the message only confirms what you asked for.")
        p.line("  Start the kernel again (Kernel > Restart) when you need it.")
        return exitcodes.OK

    p.line()
    p.line("  Checking memory, kernels, servers and kernelspecs...")
    facts = gather(deep=args.deep)
    facts.update(answers)
    findings = rules.evaluate(facts, base)
    shown = set()

    step(p, 3, "Is it memory?", "kernel-terminated-memory", base)
    render_text.write_checks(
        p, facts, findings, args.verbose, only={"deaths", "memory", "oom", "kernels"}
    )
    # One ranking: the verdict the report leads with leads here too.
    lead = next((f for f in findings if f["severity"] != "info"), None)
    memory = [f for f in findings if f["cause"] == "memory"]
    if memory and lead is not None and lead["cause"] == "memory":
        p.line()
        oom = any(f["id"] in rules.OOM_RULES for f in memory)
        p.line("  Yes, memory is the likely cause:" if oom else "  Memory is where to look first:")
        render_text.write_findings(p, memory, args.verbose)
        shown.update(f["id"] for f in memory)
        offer_halt(p, asker, ctx, facts)
        if not asker.yes("  Look for other causes too?"):
            return finish(p, facts, findings, shown, args.verbose)
    elif memory and lead is not None:
        p.line()
        p.line(
            f"  Memory shows signs too (below), but the evidence points first to: {lead['message']}"
        )
    else:
        p.line("  No sign of memory trouble.")

    step(p, 4, "Something else?", "kernel-terminated-other", base)
    render_text.write_checks(
        p, facts, findings, args.verbose, only={"processes", "servers", "kernelspecs"}
    )
    rest = [f for f in findings if f["id"] not in shown]
    if rest:
        p.line()
        render_text.write_findings(p, rest, args.verbose, start=len(shown) + 1)
        shown.update(f["id"] for f in rest)
    offer_run(p, asker, ctx, base)
    return finish(p, facts, findings, shown, args.verbose)


def offer_run(p, asker, ctx, base):
    """Step 1 of the site's "something else": run the notebook's code without Jupyter."""
    p.line()
    p.line("  Without Jupyter, a crash shows itself: the wizard can run a notebook's code in a")
    p.line(f"  plain Python process and say how it ends ({docs_map.url_for('wizard-run', base)}).")
    path = asker.ask("  Notebook to run outside Jupyter (Enter to skip): ")
    if not path:
        return None
    from wizard.commands import run as cmd_run

    return cmd_run.main([path, "--docs-url", base], ctx)


def offer_halt(p, asker, ctx, facts):
    """Memory is the cause: offer to shut down the kernels that sit idle holding it."""
    from wizard.commands.halt import halt_kernels

    kernels = (facts.get("kernels") or {}).get("kernels") or []
    idle = idle_rule.worth_halting(kernels)
    if not idle:
        p.line("  No kernel has been idle long enough to shut down safely; see the commands above.")
        return None
    p.line()
    p.line(f"  {len(idle)} kernel(s) have been idle for a while and hold memory.")
    if not asker.yes("  Shut them down now (you will be asked to confirm the list)?"):
        return None
    return halt_kernels(idle, facts.get("servers"), ctx, ask=asker.yes)


def finish(p, facts, findings, shown, verbose):
    left = [f for f in findings if f["id"] not in shown]
    if left:
        p.line()
        p.line(p.bold("Also found"))
        render_text.write_findings(p, left, verbose, start=len(shown) + 1)
    render_text.write_errors(p, facts)
    p.line()
    p.line(render_text.closing_line(findings, facts.get("errors") or ()))
    return findings_exit_code(findings)
