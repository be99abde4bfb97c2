"""The kernel provisioner that tells the recorder how each kernel of this server ended.

``WizardProvisioner`` is jupyter_client's ``LocalProvisioner`` and adds only
bookkeeping: the process it launched (so the recorder samples this server's kernels
and no one else's), its return code the first time ``poll()`` or ``wait()`` knows it,
and whether the server asked it to stop (``shutdown_requested``, ``terminate``,
``kill``: unless it was already dead, then it crashed first). It is registered under
the ``jupyter_client.kernel_provisioners`` entry point as ``kernel-wizard-local``, and
the extension makes it ``KernelProvisionerFactory.default_provisioner_name`` when it
loads (``make_default``), unless that option or ``$JUPYTER_DEFAULT_PROVISIONER_NAME``
is set: jupyter_server reads only ``jpserver_extensions`` from the package's
``jupyter_server_config.d`` file, so the default cannot be set there. A kernelspec
that names another provisioner keeps it: those kernels are sampled (see
``extension``), not hooked.

With the extension not loaded (no recorder running), it is exactly a LocalProvisioner.
"""

import time

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

NAME = "kernel-wizard-local"

_sink = None  # the running recorder: ``launched(prov)``, ``put(obs)``


def set_sink(sink):
    """Where launches and exits go (the running ``extension.Extension``), or None."""
    global _sink
    _sink = sink


def make_default(serverapp):
    """Make this provisioner the default of the server's kernels, unless one is chosen."""
    import os

    from jupyter_client.provisioning import KernelProvisionerFactory

    chosen = serverapp.config.get("KernelProvisionerFactory", {})
    if "default_provisioner_name" in chosen or os.environ.get(
        KernelProvisionerFactory.default_provisioner_name_env
    ):
        serverapp.log.info(
            "wizard.server_ext: a default kernel provisioner is configured: "
            "its kernels' endings are sampled, not reported exactly"
        )
        return False
    KernelProvisionerFactory.instance(
        parent=serverapp.kernel_manager
    ).default_provisioner_name = NAME
    return True


class WizardProvisioner(LocalProvisioner):
    """A ``LocalProvisioner`` that reports its kernel's launch and ending."""

    async def launch_kernel(self, cmd, **kwargs):
        info = await super().launch_kernel(cmd, **kwargs)
        self._wizard = {"requested": None, "seen": False, "proc": self.process}
        if _sink is not None and self.process is not None:
            _sink.launched(self)
        return info

    async def poll(self):
        proc = self.process
        ret = await super().poll()
        if proc is not None and ret is not None:
            self._wizard_seen(proc)
        return ret

    async def wait(self):
        proc = self.process
        ret = await super().wait()
        if proc is not None and proc.returncode is not None:
            self._wizard_seen(proc)
        return ret

    async def shutdown_requested(self, restart=False):
        self._wizard_asked(restart)
        return await super().shutdown_requested(restart=restart)

    async def terminate(self, restart=False):
        self._wizard_asked(restart)
        return await super().terminate(restart=restart)

    async def kill(self, restart=False):
        self._wizard_asked(restart)
        return await super().kill(restart=restart)

    # -- bookkeeping -------------------------------------------------------------

    def _wizard_state(self):
        state = getattr(self, "_wizard", None)
        if state is None or state["proc"] is not self.process:
            state = self._wizard = {"requested": None, "seen": False, "proc": self.process}
        return state

    def _wizard_asked(self, restart):
        proc = self.process
        if proc is None:
            return
        state = self._wizard_state()
        if state["requested"]:
            return
        try:
            dead = proc.poll() is not None
        except OSError:
            dead = False
        if dead:
            self._wizard_seen(proc)  # it died before anyone asked: a crash
        else:
            state["requested"] = "restart" if restart else "shutdown"

    def _wizard_seen(self, proc):
        state = getattr(self, "_wizard", None)
        if state is None or state["proc"] is not proc:
            state = {"requested": None, "seen": False, "proc": proc}
        if state["seen"] or proc.returncode is None:
            return
        state["seen"] = True
        if _sink is None:
            return
        obs = {
            "pid": proc.pid,
            "kernel_id": self.kernel_id,
            "returncode": proc.returncode,
            "time": time.time(),
            "requested": state["requested"],
            "notebook": None,
            "kernel_name": None,
        }
        km = self.parent
        try:
            env = (getattr(km, "_launch_args", None) or {}).get("env") or {}
            obs["notebook"] = env.get("JPY_SESSION_NAME") or None
            obs["kernel_name"] = getattr(km, "kernel_name", None) or None
        except (AttributeError, TypeError):
            pass  # another kernel manager class: the recorder's own sample names it
        _sink.put(obs)
