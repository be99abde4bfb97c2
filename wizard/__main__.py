# Parsed by every Python a user may have: wizard.commands refuses an old one in one line
# before anything that needs a newer Python is imported.
import wizard.commands  # noqa: F401
from wizard.commands.cli import main

# main() calls sys.exit itself, so the exit code survives zipapp's generated entry point.
main()
