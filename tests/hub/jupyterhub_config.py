"""The test hub's configuration: tests/hub/z2jh-values.yaml read as z2jh's own
jupyterhub_config.py reads its values, on loopback, with each user's server in its own
memory cgroup (v1) standing in for KubeSpawner's mem_limit.

The harness (tests/hub/harness.py) passes what changes from run to run in KW_HUB_*
variables: ports, folders, tokens, the singleuser environment.
"""

import os
from pathlib import Path

import yaml
from jupyterhub.spawner import LocalProcessSpawner

c = get_config()  # noqa: F821  (JupyterHub's config loader provides it)
env = os.environ
HERE = Path(__file__).resolve().parent
values = yaml.safe_load((HERE / "z2jh-values.yaml").read_text())
hub, singleuser = values["hub"], values["singleuser"]
state = Path(env["KW_HUB_STATE"])

# loopback only, free ports chosen by the harness
c.JupyterHub.bind_url = f"http://127.0.0.1:{env['KW_HUB_PROXY_PORT']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{env['KW_HUB_HUB_PORT']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['KW_HUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["KW_HUB_CHP"]]
c.ConfigurableHTTPProxy.auth_token = env["KW_HUB_PROXY_TOKEN"]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# a fixed password for the test's own users
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = env["KW_HUB_PASSWORD"]
c.Authenticator.allowed_users = set(env["KW_HUB_USERS"].split(","))

# hub.services and hub.loadRoles, as z2jh turns them into JupyterHub's lists; the token
# that z2jh would keep in its Secret comes from the harness
c.JupyterHub.services = []
for key, service in (hub.get("services") or {}).items():
    service = dict(service or {}, name=key)
    service.pop("apiToken", None)
    service["api_token"] = env[f"KW_HUB_TOKEN_{key.upper()}"]
    c.JupyterHub.services.append(service)
c.JupyterHub.load_roles = [dict(role, name=key) for key, role in hub["loadRoles"].items()]
# the harness's own service: starts and stops servers, reads the users' API as they would
c.JupyterHub.services.append({"name": "test-admin", "api_token": env["KW_HUB_ADMIN_TOKEN"]})
c.JupyterHub.load_roles.append(
    {
        "name": "test-admin",
        "services": ["test-admin"],
        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
    }
)


def _bytes(text):
    text = str(text).strip()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


LIMIT = _bytes(singleuser["memory"]["limit"])
CGROUPS = Path(env["KW_HUB_CGROUP_PARENT"])  # a v1 memory cgroup the harness may write
PREFIX = env["KW_HUB_CGROUP_PREFIX"]


class CgroupSpawner(LocalProcessSpawner):
    """The local process spawner, each server born inside its own memory cgroup.

    The cgroup is made before the server starts, the limit written to memory and
    memory+swap, and the child writes itself into it before it drops root: every
    process the server starts (its kernels) is inside from the first instruction.
    """

    def cgroup_dir(self):
        return CGROUPS / f"{PREFIX}-{self.user.name}-{self.name or 'default'}"

    async def start(self):
        d = self.cgroup_dir()
        d.mkdir(exist_ok=True)
        (d / "memory.limit_in_bytes").write_text(str(LIMIT))
        if (d / "memory.memsw.limit_in_bytes").exists():
            (d / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
        self.environment["KW_HUB_CGROUP"] = str(d)  # tells the test where its server lives
        return await super().start()

    def make_preexec_fn(self, name):
        drop_root = super().make_preexec_fn(name)
        procs = str(self.cgroup_dir() / "cgroup.procs")

        def preexec():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
            drop_root()

        return preexec


c.JupyterHub.spawner_class = CgroupSpawner
c.Spawner.cmd = [env["KW_HUB_SINGLEUSER"]]
c.Spawner.default_url = singleuser["defaultUrl"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {"WIZARD_WATCH_INTERVAL": "0.5"}
c.JupyterHub.allow_named_servers = True
