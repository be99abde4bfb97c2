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

It writes to the same database as ``python -m wizard watch`` (``c.KernelWizard.db``,
else ``$WIZARD_DB``, else the user's data dir) and, when no ``watch`` holds the
database's lock, it also samples the memory of this server's kernels (every
``c.KernelWizard.interval`` seconds, default 2). With a ``watch`` running, it only
adds the exit statuses; it takes over sampling when that ``watch`` stops. Its options
are one traitlets class, ``wizard.server.config.KernelWizard``.

Everything it does concerns this server's own kernels, those of
``serverapp.kernel_manager``: it never asks another server. How:

- ``wizard.server.provisioner.WizardProvisioner``, a jupyter_client ``LocalProvisioner``
  registered under the ``jupyter_client.kernel_provisioners`` entry point and made the
  default kernel provisioner when the extension loads, reports each kernel's launch
  and its exit status (returncode -11 is SIGSEGV), and whether the server asked it to
  stop. A kernel started with another provisioner is sampled instead: its ending is
  inferred (the kernel log, its cgroup's OOM count, a zombie's status), not exact.
- each death is an event on the server's event bus (``wizard.server.events``);
- halting goes through the kernel manager (``wizard.server.own_kernels``).

A failure here is logged, never raised.
"""


def _jupyter_server_extension_points():
    return [{"module": "wizard.server_ext"}]


def _load_jupyter_server_extension(serverapp):
    from wizard.server import extension

    extension.load(serverapp)
