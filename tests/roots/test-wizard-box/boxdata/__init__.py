"""A stand-in for the wizard package: the tables the extension renders, and a CLI."""
