"""What users see in the report, run through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

from wizard.base.invocation import command

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


# -- a SIGKILL banner: one verdict, whichever way the evidence points -------------------

SIGKILL = "Kernel last terminated by signal SIGKILL."

NO_OOM_VERDICT = (
    "The kernel was killed with SIGKILL, but no out-of-memory kill is on record here: a "
    "forced kill or a restart (kill -9, a stopped project, a restart that timed out), or a "
    "kill this machine's view does not show (the OOM killer of another cgroup, or a "
    "userspace killer such as systemd-oomd or earlyoom)."
)
OOM_VERDICT = (
    "The kernel was killed with SIGKILL, and the memory evidence above says why: the "
    "out-of-memory killer."
)


def banner_report(tmp_path, monkeypatch, oom_kill):
    from test_cli import make_tree, point_wizard_at, run_cli

    root = point_wizard_at(make_tree(tmp_path / "root", oom_kill=oom_kill), monkeypatch)
    env = {"WIZARD_SYSROOT": str(root), "HOME": "/home/user", "NO_COLOR": "1"}
    code, out, err = run_cli(["--json", "--no-input", "--banner", SIGKILL], env)
    assert err == ""
    _, text, _ = run_cli(["--no-input", "--banner", SIGKILL], env)
    return code, json.loads(out), text


def test_sigkill_without_memory_evidence_says_one_thing(tmp_path, monkeypatch):
    code, report, text = banner_report(tmp_path, monkeypatch, oom_kill=0)
    by_id = {f["id"]: f for f in report["findings"]}
    sigkill = by_id["killed-sigkill"]
    assert report["findings"][0]["id"] == "killed-sigkill"
    assert (sigkill["severity"], sigkill["message"]) == ("warning", NO_OOM_VERDICT)
    assert sigkill["commands"] == [command("watch")]
    assert "oom-kills-recorded" not in by_id
    assert "most often the OOM killer" not in text
    assert "\n  1. [!] " + NO_OOM_VERDICT + "\n" in text
    assert code == 1


def test_sigkill_with_an_oom_record_blames_the_oom_killer(tmp_path, monkeypatch):
    code, report, text = banner_report(tmp_path, monkeypatch, oom_kill=1)
    by_id = {f["id"]: f for f in report["findings"]}
    assert by_id["killed-sigkill"]["message"] == OOM_VERDICT
    assert by_id["killed-sigkill"]["severity"] == "problem"
    assert "no-memory-evidence" not in by_id
    assert "No sign of memory trouble" not in text
    assert "no out-of-memory kill is on record" not in text
    assert code == 1
