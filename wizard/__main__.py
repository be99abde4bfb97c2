from wizard.commands.cli import main

# main() calls sys.exit itself, so the exit code survives zipapp's generated entry point.
main()
