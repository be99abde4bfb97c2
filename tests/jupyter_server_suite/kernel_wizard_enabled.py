"""A pytest plugin for jupyter_server's own test suite: every ServerApp those tests
start loads wizard.server_ext (as installing kernel-wizard does), whatever
``jp_server_config`` the test module sets. At the end it says whether the extension
was loaded, so a run that never enabled it cannot pass for one that did.
"""

import pytest

loaded = []


@pytest.fixture(autouse=True)
def _kernel_wizard_enabled(monkeypatch):
    from jupyter_server.serverapp import ServerApp

    orig = ServerApp.init_server_extensions

    def init_server_extensions(self):
        self.jpserver_extensions = dict(self.jpserver_extensions, **{"wizard.server_ext": True})
        return orig(self)

    monkeypatch.setattr(ServerApp, "init_server_extensions", init_server_extensions)
    yield
    from wizard.server import extension

    if extension.current() is not None:
        loaded.append(True)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"kernel-wizard extension loaded: {bool(loaded)}")
