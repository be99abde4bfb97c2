"""The wizard's exit codes, in one place (plain ints: ``enum`` costs start-up time).

What each means for a command is that command's ``EXIT_CODES`` table, which feeds its
``--help`` and the site.
"""

OK = 0  # nothing wrong found / the command did what was asked
PROBLEM = 1  # a problem was found, or something could not be done
USAGE = 2  # usage or input error
INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
