"""``python -m wizard``: the report. Memory against the limit in force, the OOM killer's
record, the kernels with their notebooks, the servers and the kernelspecs, then the
ranked verdict with the section of the site and the commands that fix it.

On a terminal it walks through the site's questions (``wizard.commands.walk``).
"""

from wizard.base import exitcodes
from wizard.base.invocation import command
from wizard.commands.base import docs_url, findings_exit_code, new_parser, parse
from wizard.commands.registry import available_commands

NAME = ""
EXIT_CODES = {
    exitcodes.OK: "nothing wrong was found",
    exitcodes.PROBLEM: "a problem was found (a problem or a warning in the verdict)",
    exitcodes.USAGE: "usage or input error",
    exitcodes.INTERRUPTED: "interrupted (Ctrl-C)",
}

DESCRIPTION = """\
Find out why a Jupyter kernel died and what to do now. It checks memory (the
container's cgroup limit and the OOM killer's record), the open kernels with
the notebook each belongs to, the Jupyter servers and the kernelspecs, then
points to the section of the troubleshooting site that fits."""


def build_parser():
    cmds = available_commands()
    epilog = ""
    if cmds:
        epilog = "commands:\n" + "\n".join(
            f"  {name:<10}{desc}  ({command(name, '--help')})" for name, (_, desc) in cmds.items()
        )
    parser = new_parser(NAME, DESCRIPTION, EXIT_CODES, epilog)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the evidence under each check"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON; asks no questions"
    )
    parser.add_argument(
        "--no-input",
        action="store_true",
        help="never ask questions (the default without a terminal)",
    )
    parser.add_argument(
        "--banner",
        metavar="TEXT",
        help='what the message said, e.g. "Kernel last terminated by signal SIGSEGV."',
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also start each kernelspec's interpreter to see that it runs",
    )
    parser.add_argument(
        "--docs-url",
        metavar="BASE",
        type=docs_url,
        help="base URL of the troubleshooting site (default: $WIZARD_DOCS_URL or the published "
        "site); a local build works too: file:///path/to/html/",
    )
    from wizard import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv, ctx):
    args, code = parse(build_parser(), argv)
    if args is None:
        return code

    from wizard.diagnosis import banner as banner_mod
    from wizard.diagnosis import docs_map, rules
    from wizard.probes.collect import gather

    base = docs_map.docs_base(args.docs_url)
    interactive = not args.no_input and not args.json and ctx.stdin_isatty
    answers = {"banner": None, "intentional": None}
    if args.banner is not None:
        answers["banner"] = banner_mod.parse(args.banner)

    if interactive:
        from wizard.commands import walk

        return walk.session(ctx, args, answers, base)

    facts = gather(deep=args.deep)
    facts.update(answers)
    if args.json or args.verbose:  # what a bug report needs; costs a metadata look-up
        from wizard.probes import versions

        facts["versions"] = versions.probe()
    findings = rules.evaluate(facts, base)
    code = ctx.outcome = findings_exit_code(findings)
    if args.json:
        from wizard.report import jsonout as render_json

        render_json.write(ctx.stdout, facts, findings, base, code)
    else:
        from wizard.report import text as render_text

        render_text.write(ctx, facts, findings, verbose=args.verbose)
    ctx.stdout.flush()
    return code
