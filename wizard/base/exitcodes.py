"""The wizard's exit codes, in one place (plain ints: ``enum`` costs start-up time)."""

OK = 0  # nothing wrong found / the command did what was asked
PROBLEM = 1  # a problem was found, or something could not be done
USAGE = 2  # usage or input error
INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

ALL = {
    OK: "nothing wrong was found",
    PROBLEM: "a problem was found (or a command could not do all it was asked)",
    USAGE: "usage or input error",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
