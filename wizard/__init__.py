"""Find out why a Jupyter kernel died, and what to do about it.

Run it with ``python -m wizard``. Importing this package must stay cheap: the
wizard is run when memory is nearly gone, so modules import what they need
only when a command needs it.
"""

__version__ = "0.1.0"
