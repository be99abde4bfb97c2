"""What a user can hand over when the wizard itself fails: the traceback on request, and
the versions of what it runs on."""

import io
import json
import platform

import pytest

from wizard.commands import cli
from wizard.report.context import Context


def run(argv, environ=None):
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdin=io.StringIO(""), stdout=out, stderr=err, environ=environ or {})
    return cli.run(argv, ctx), out.getvalue(), err.getvalue()


@pytest.fixture
def broken(monkeypatch):
    from wizard.probes import collect

    def gather(*args, **kwargs):
        return {}["no such fact"]

    monkeypatch.setattr(collect, "gather", gather)


def test_an_internal_error_is_one_line_that_says_how_to_see_more(broken):
    code, _out, err = run(["--no-input"])
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("wizard: internal error: KeyError at test_bug_report.py:")
    assert "--traceback" in err and "WIZARD_DEBUG=1" in err


@pytest.mark.parametrize(
    "argv, environ",
    [
        (["--no-input", "--traceback"], {}),
        (["--traceback", "--json"], {}),
        (["--no-input"], {"WIZARD_DEBUG": "1"}),
    ],
)
def test_the_traceback_on_request(broken, argv, environ):
    with pytest.raises(KeyError, match="no such fact"):
        run(argv, environ)


@pytest.mark.parametrize("environ", [{"WIZARD_DEBUG": "0"}, {"WIZARD_DEBUG": ""}])
def test_debug_off_stays_one_line(broken, environ):
    code, _, err = run(["--no-input"], environ)
    assert code == 1 and "internal error" in err


def test_every_command_accepts_traceback():
    from wizard.commands import registry

    for name in registry.COMMANDS:
        module = registry.module_of(name)
        helptext = module.build_parser().format_help()
        assert "--traceback" in helptext, name


def test_json_and_verbose_name_the_versions():
    from wizard import __version__
    from wizard.system.packages import installed_version

    _code, out, _ = run(["--json"])
    versions = json.loads(out)["versions"]
    assert versions["wizard"] == __version__
    assert versions["python"] == f"{platform.python_implementation()} {platform.python_version()}"
    for name in ("jupyter_server", "ipykernel", "psutil"):
        assert versions[name] == installed_version(name)
    _code, out, _ = run(["--no-input", "-v"])
    last = [line for line in out.splitlines() if line.startswith("Versions")]
    assert len(last) == 1 and f"wizard {__version__}" in last[0]
    assert f"CPython {platform.python_version()}" in last[0] or "PyPy" in last[0]
    _code, out, _ = run(["--no-input"])
    assert "Versions" not in out
