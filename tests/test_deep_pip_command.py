"""--deep: the pip command for a kernelspec without ipykernel is its own interpreter's."""

from wizard.diagnosis import rules

NO_IPYKERNEL = "import ipykernel failed (exit 1): ModuleNotFoundError: No module named 'ipykernel'"


def finding(specs):
    rule = next(r for r in rules.RULES if r["id"] == "kernelspec-broken")
    return rule["test"]({"kernelspecs": {"kernelspecs": specs}})


def test_each_spec_without_ipykernel_gets_its_own_interpreters_pip():
    specs = [
        {
            "name": "gone",
            "ok": False,
            "problem": "interpreter /opt/gone/bin/python not found",
            "argv0_path": None,
            "deep": {"ok": False, "detail": "not run"},
        },
        {
            "name": "bare",
            "ok": True,
            "problem": None,
            "argv0_path": "/envs/bare/bin/python",
            "deep": {"ok": False, "detail": NO_IPYKERNEL},
        },
        {
            "name": "fine",
            "ok": True,
            "problem": None,
            "argv0_path": "/usr/bin/python3",
            "deep": {"ok": True, "detail": "works"},
        },
    ]
    cmds = finding(specs)["commands"]
    assert "/envs/bare/bin/python -m pip install ipykernel" in cmds
    assert not [c for c in cmds if c.startswith(("python3 -m pip", "/usr/bin/python3 -m pip"))]
    assert cmds[-1] == "jupyter kernelspec remove -y gone"
