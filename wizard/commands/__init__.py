# Every way the wizard is started (python -m wizard, wizard.pyz, kernel-wizard) imports this
# package first, on whatever Python the user has: so it is written for all of them (2.7's
# syntax, nothing imported but sys) and refuses in one line below the supported version.
import sys

NEEDED = (3, 9)

if sys.version_info[:2] < NEEDED:
    sys.stderr.write(
        "kernel-wizard: needs Python %d.%d or newer; this is Python %s (%s)\n"  # noqa: UP031
        % (NEEDED + (sys.version.split()[0], sys.executable or "python"))  # noqa: RUF005
    )
    sys.exit(2)
