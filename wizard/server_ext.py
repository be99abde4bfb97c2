"""The Jupyter server extension: the kernel-death recorder, the REST API the lab
extension asks, and kernel metrics on ``/metrics`` (``wizard.server``).

Installing the package enables it in that environment's servers (a file in
``etc/jupyter/jupyter_server_config.d``). Inside the server a kernel is the server's
own child, so the exit status of every kernel that ends is known exactly (returncode
-11 is SIGSEGV), and whether the server was asked to stop it. To enable it elsewhere
for one run::

    jupyter server --ServerApp.jpserver_extensions='{"wizard.server_ext": True}'

or for good, in ``jupyter_server_config.py``::

    c.ServerApp.jpserver_extensions = {"wizard.server_ext": True}

It writes to the same database as ``python -m wizard watch`` (``$WIZARD_DB``, else
the user's data dir; ``c.KernelWizard.db`` overrides it) and, when no ``watch``
holds the database's lock, it also samples memory as ``watch`` does (every
``c.KernelWizard.interval`` seconds, default 2, or ``$WIZARD_WATCH_INTERVAL``).
With a ``watch`` running, it only adds the exit statuses; it takes over sampling
when that ``watch`` stops.

How: ``jupyter_client``'s ``LocalProvisioner`` is wrapped. ``poll()`` and
``wait()`` report a process's return code the first time it is known;
``shutdown_requested()``, ``terminate()`` and ``kill()`` mark the process as
stopped on request (unless it was already dead: then it crashed first). Nothing
else in the server changes, and a failure here is logged, never raised.
"""


def _jupyter_server_extension_points():
    return [{"module": "wizard.server_ext"}]


def _load_jupyter_server_extension(serverapp):
    from wizard.server import extension

    extension.load(serverapp)
