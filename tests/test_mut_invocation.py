"""``wizard.base.invocation``: how the wizard was started decides the command lines it prints."""

import pytest

from wizard.base import invocation


@pytest.fixture
def started(monkeypatch):
    """``started(argv0, executable)``: pretend the wizard was started so."""
    monkeypatch.delenv("WIZARD_PROG", raising=False)
    invocation.force(None)

    def start(argv0, executable="/usr/bin/python3.11"):
        monkeypatch.setattr(invocation.sys, "argv", [argv0] if argv0 is not None else [])
        monkeypatch.setattr(invocation.sys, "executable", executable)
        return invocation.prog()

    yield start
    invocation.force(None)


@pytest.mark.parametrize(
    "argv0, executable, prog",
    [
        ("/venv/bin/kernel-wizard", "/venv/bin/python3", "kernel-wizard"),
        ("kernel-wizard", "/venv/bin/python3", "kernel-wizard"),
        ("/x/wizard.pyz", "/usr/bin/python3.11", "python3.11 /x/wizard.pyz"),
        ("wizard.pyz", "/usr/bin/python3", "python3 wizard.pyz"),
        ("/src/wizard/__main__.py", "/usr/bin/python3.12", "python3.12 -m wizard"),
        ("-m", "/usr/bin/python", "python -m wizard"),
        ("/src/wizard/__main__.py", "/usr/bin/pypy3", "python3 -m wizard"),
        ("/src/wizard/__main__.py", "", "python3 -m wizard"),
        ("/src/wizard/__main__.py", None, "python3 -m wizard"),
        ("/x/wizard.pyz", "/opt/py/PYTHON.EXE", "PYTHON /x/wizard.pyz"),
        ("/x/wizard.pyz", "/opt/py/python.exe", "python /x/wizard.pyz"),
        ("/x/wizard.pyz", "/opt/py/pythonw", "pythonw /x/wizard.pyz"),
        (None, "/usr/bin/python3", "python3 -m wizard"),
        ("", "/usr/bin/python3", "python3 -m wizard"),
    ],
)
def test_prog_follows_how_it_was_started(started, argv0, executable, prog):
    assert started(argv0, executable) == prog


def test_kernel_wizard_exe_by_its_basename(started, monkeypatch):
    monkeypatch.setattr(invocation.os.path, "basename", lambda p: p.rsplit("\\", 1)[-1])
    assert started("C:\\env\\Scripts\\kernel-wizard.exe", "C:\\env\\python.exe") == (
        "kernel-wizard"
    )


def test_the_environment_and_force_win(started, monkeypatch):
    monkeypatch.setenv("WIZARD_PROG", "my-wizard")
    assert started("/venv/bin/kernel-wizard") == "my-wizard"
    invocation.force("python3 wizard.pyz")
    assert started("/venv/bin/kernel-wizard") == "python3 wizard.pyz"
    invocation.force(None)
    monkeypatch.setenv("WIZARD_PROG", "")
    assert started("/venv/bin/kernel-wizard") == "kernel-wizard"


def test_command_joins_the_words_it_is_given(started):
    started("/venv/bin/kernel-wizard")
    assert invocation.command("halt", "--idle", "15m") == "kernel-wizard halt --idle 15m"
    assert invocation.command("watch", "", None) == "kernel-wizard watch"
    assert invocation.command() == "kernel-wizard"
