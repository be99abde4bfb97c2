"""What users see in the report, run through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def real_wizard(args, env_extra, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "WIZARD"))}
    env.update(NO_COLOR="1", PYTHONPATH=str(REPO), **env_extra)
    proc = subprocess.run(
        [sys.executable, "-m", "wizard", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


# -- --deep decides whether a kernelspec is ok ------------------------------------------


def bare_venv_spec(tmp_path):
    venv = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    spec_dir = tmp_path / "jp" / "kernels" / "bare"
    spec_dir.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Bare", "language": "python"})
    )
    home = tmp_path / "home"
    home.mkdir()
    return {
        "JUPYTER_PATH": str(tmp_path / "jp"),
        "HOME": str(home),
        "JUPYTER_DATA_DIR": str(home / "data"),
    }


BARE_PROBLEM = "import ipykernel failed (exit 1): ModuleNotFoundError: No module named 'ipykernel'"


def test_deep_marks_a_spec_without_ipykernel_broken_everywhere(tmp_path):
    env = bare_venv_spec(tmp_path)
    code, out, _ = real_wizard(["--deep", "--no-input", "--json"], env)
    data = json.loads(out)
    specs = {s["name"]: s for s in data["kernelspecs"]}
    bare = specs["bare"]
    assert (bare["ok"], bare["problem"]) == (False, BARE_PROBLEM)
    assert bare["deep"] == {"ok": False, "detail": BARE_PROBLEM}
    assert code == 1
    broken = sorted(n for n, s in specs.items() if not s["ok"])
    assert all(s["ok"] == (s["deep"]["ok"] is not False) for s in specs.values())

    code, out, _ = real_wizard(["--deep", "--no-input"], env)
    (line,) = [ln for ln in out.splitlines() if "Kernelspecs:" in ln]
    assert line.startswith(f"[✗] Kernelspecs: {len(specs)} installed, {len(broken)} broken: ")
    assert f"bare ({BARE_PROBLEM})" in line
    assert "(ok)" not in out  # the per-spec lines are -v only; none says ok for bare

    code, out, _ = real_wizard(["--deep", "--no-input", "-v"], env)
    assert f"bare: {tmp_path}/bare/bin/python ({BARE_PROBLEM})" in out


def test_without_deep_the_spec_is_only_checked_on_disk(tmp_path):
    env = bare_venv_spec(tmp_path)
    _, out, _ = real_wizard(["--no-input", "--json"], env)
    bare = {s["name"]: s for s in json.loads(out)["kernelspecs"]}["bare"]
    assert (bare["ok"], bare["problem"], bare["deep"]) == (True, None, None)
