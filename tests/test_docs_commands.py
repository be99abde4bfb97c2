"""The commands the docs show run.

Every shell command on the site is a ``$ `` line in a ``console`` code block of a
page in ``docs/``. This test reads them from the sources and checks each one:

- ``python -m wizard ...`` and ``python3 wizard.pyz ...`` lines run the real CLI (with
  ``--no-input`` added when missing, and ``WIZARD_DOCS_URL`` set) and must end with
  exit code 0 or 1, never 2 (usage error) or a traceback;
- every other command's programs must be installed (``.ci/run`` installs the apt
  packages named in ``APT``), except the ones in ``ELSEWHERE``, which belong to
  another machine (a Docker host, a Kubernetes cluster) and are never run;
- the read-only ones are really run and must exit 0; the others (they stop
  processes, change the system, or run until stopped) are listed in ``RULES`` with
  the reason they are not run. A command that no rule covers fails the test, so a
  new command on a page has to be classified here.

Placeholders such as ``NOTEBOOK`` or ``PID`` must be explained in the page's prose;
the ones a runnable command uses are replaced by real files the test creates.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BIN = str(Path(sys.executable).parent)
DOCS_URL = "https://docs.example.invalid/kernel-wizard/"

# What a placeholder stands for. Those with a value below can appear in commands
# that run; the others only in commands that are not run.
PLACEHOLDERS = {
    "NOTEBOOK": "a notebook's name without .ipynb (the test makes NOTEBOOK.ipynb and NOTEBOOK.py)",
    "SCRIPT": "a Python script's name without .py",
    "KERNELSPEC_DIR": "a folder listed by jupyter kernelspec list",
    "PID": "a process id",
    "KERNEL_ID": "a kernel's id from the server's /api/sessions",
    "TOKEN": "a Jupyter server's token",
    "PYTHON": "the interpreter a kernel or notebook uses (the test uses its own)",
    "KERNEL_NAME": "a kernelspec's name from jupyter kernelspec list",
    "SITE_URL": "the address of this site",
    "IMAGE": "a Docker image",
    "CONTAINER": "a Docker container's name or id",
    "POD": "a Kubernetes pod's name",
    "NAMESPACE": "the Kubernetes namespace the hub is installed in",
    "JOBID": "a Slurm job's number",
}

# Upper-case words in commands that are meant literally, not placeholders.
LITERALS = {"DELETE", "MEM", "SIGKILL", "SIGSEGV", "SIGTERM", "WIZARD_DOCS_URL"}

RUN = "run"  # read-only: run it, it must exit 0
RUN_0_OR_1 = "run, 0 or 1"  # read-only, but 1 is a normal answer (nothing found)
RUN_IF_PRESENT = "run if the file exists"  # cgroup files: v1 or v2, not both
NOT_RUN = "not run"

# First match wins. The NOT_RUN rules say why the test leaves the command alone.
RULES = [
    (r"kill -l \d+", RUN, "prints a signal's name"),
    (r"kill (-9 )?PID", NOT_RUN, "dangerous: stops a process"),
    (r"curl -X DELETE .*", NOT_RUN, "dangerous: shuts a kernel down"),
    (r"curl -H .*", NOT_RUN, "needs a running server and its token"),
    (r"top|htop", NOT_RUN, "interactive: runs until you quit it"),
    (
        r"jupyter (server|lab|notebook)( --no-browser)?",
        NOT_RUN,
        "starts a server that keeps running",
    ),
    (r"(python -m )?pip install .*", NOT_RUN, "installs a package"),
    (r"curl -LO SITE_URL/wizard\.pyz", NOT_RUN, "downloads from the published site"),
    (r"docker (run|inspect) .*", NOT_RUN, "needs a Docker daemon and a container"),
    (r"kubectl .*", NOT_RUN, "needs a Kubernetes cluster and its credentials"),
    (r"(sacct|seff) .*", NOT_RUN, "needs a Slurm cluster's accounting"),
    (r"jupyter console --kernel KERNEL_NAME", NOT_RUN, "interactive: runs until you quit it"),
    (r"PYTHON -m ipykernel_launcher", NOT_RUN, "a kernel that starts waits until stopped"),
    (
        r"python benchmarks/bench_startup\.py",
        NOT_RUN,
        "takes minutes; test_benchmark.py runs it with small numbers",
    ),
    (r"(python|PYTHON) -m ipykernel install .*", NOT_RUN, "registers a kernelspec for the user"),
    (r"jupyter kernelspec remove .*", NOT_RUN, "deletes a kernelspec"),
    (r"pgrep .*", RUN_0_OR_1, "pgrep exits 1 when no process matches"),
    (r"dmesg .*\| grep .*", RUN_0_OR_1, "grep exits 1 when nothing matches or the log is closed"),
    (r"journalctl .*\| grep .*", RUN_0_OR_1, "grep exits 1 when nothing matches or no journal"),
    (r"cat /sys/fs/cgroup/\S+", RUN_IF_PRESENT, "cgroup v1 and v2 files differ"),
    (r"cat /proc/pressure/memory", RUN_IF_PRESENT, "only on kernels with PSI enabled"),
    (r"cat /proc/self/cgroup", RUN, ""),
    (r"cat KERNELSPEC_DIR/kernel\.json", RUN, ""),
    (r"free -h|top -b -n 1 .*|smem -ntk", RUN, ""),
    (r"ps .*", RUN, ""),
    (r"jupyter (kernelspec list|server list|--paths)", RUN, ""),
    (r"jupyter (labextension list|server extension list)", RUN, ""),
    (
        r"python labextension/build\.py",
        NOT_RUN,
        "rebuilds the lab extension (minutes, Node.js); test_lab_extension checks the build",
    ),
    (r"jupyter nbconvert --to (script|notebook --execute) NOTEBOOK\.ipynb", RUN, ""),
    (r"/usr/bin/time -v (python|PYTHON) (SCRIPT|NOTEBOOK)\.py", RUN, ""),
    (r"(python|PYTHON) (-X faulthandler )?(SCRIPT|NOTEBOOK)\.py", RUN, ""),
    (r"PYTHON -m IPython (SCRIPT|NOTEBOOK)\.py", RUN, ""),
    (r"python3? -c .*", RUN, ""),
    (r"echo \$\?", RUN, ""),
]

# The Debian package that provides each program (.ci/run installs them).
APT = {
    "top": "procps",
    "free": "procps",
    "ps": "procps",
    "pgrep": "procps",
    "kill": "procps",
    "htop": "htop",
    "smem": "smem",
    "/usr/bin/time": "time",
    "dmesg": "util-linux",
    "curl": "curl",
    "grep": "grep",
    "sort": "coreutils",
    "uniq": "coreutils",
    "head": "coreutils",
    "cat": "coreutils",
    "echo": "coreutils",
    "journalctl": "systemd",
}

# Programs of another machine: shown for a Docker host or a Kubernetes cluster, never
# run here (their commands are NOT_RUN), so this machine need not have them.
ELSEWHERE = {
    "docker": "the Docker host's client",
    "kubectl": "a Kubernetes cluster's client",
    "sacct": "a Slurm cluster's accounting client",
    "seff": "a Slurm cluster's job report",
}

# Placeholders that stand for a program: the test runs its own interpreter there.
PROGRAM_PLACEHOLDERS = {"PYTHON"}

WIZARD_LINE = re.compile(r"^((?:[A-Z_]+=\S+ )*)python3? (-m wizard|wizard\.pyz)(?: (.*))?$")
RST_CONSOLE = re.compile(r"^(\s*)\.\. (?:code-block|sourcecode|code)::\s*console\s*$")
MD_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(?:\{code-block\}\s*)?console\s*$")


# -- reading the pages ----------------------------------------------------------


def pages():
    return sorted([*DOCS.glob("*.rst"), *DOCS.glob("*.md")])


def console_blocks(path):
    """Yield (first line number, [(line number, text)]) for each console block of a page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        rst = RST_CONSOLE.match(lines[i]) if path.suffix == ".rst" else None
        md = MD_FENCE.match(lines[i]) if path.suffix == ".md" else None
        if not (rst or md):
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        if rst:
            indent = len(rst.group(1))
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                body.append((i + 1, lines[i]))
                i += 1
        else:
            fence = md.group(2)
            close = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            while i < len(lines) and not close.match(lines[i]):
                body.append((i + 1, lines[i]))
                i += 1
            i += 1
        yield start, body


def commands_of(path):
    return [
        (number, text.strip()[2:])
        for _, body in console_blocks(path)
        for number, text in body
        if text.strip().startswith("$ ")
    ]


def prose_of(path):
    """The page's text outside console blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    inside = {number for _, body in console_blocks(path) for number, _ in body}
    return "\n".join(t for n, t in enumerate(lines, 1) if n not in inside)


COMMANDS = [(path.name, number, cmd) for path in pages() for number, cmd in commands_of(path)]
IDS = [f"{page}:{number}" for page, number, _ in COMMANDS]
WIZARD = [c for c in COMMANDS if WIZARD_LINE.match(c[2])]
WIZARD_IDS = [f"{page}:{number}" for page, number, _ in WIZARD]
OTHER = [c for c in COMMANDS if not WIZARD_LINE.match(c[2])]
OTHER_IDS = [f"{page}:{number}" for page, number, _ in OTHER]


def rule_for(cmd):
    for pattern, action, why in RULES:
        if re.fullmatch(pattern, cmd):
            return action, why
    return None, None


def placeholders_in(cmd):
    words = set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", cmd))
    return words - LITERALS


def programs(cmd):
    """The program of each stage of a pipeline, after leading VAR=value assignments."""
    lexer = shlex.shlex(cmd, posix=True, punctuation_chars="|;&")
    lexer.whitespace_split = True
    stages, current = [], []
    for token in lexer:
        if set(token) <= set("|;&"):
            stages.append(current)
            current = []
        else:
            current.append(token)
    stages.append(current)
    progs = []
    for words in stages:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words.pop(0)
        if words:
            progs.append(words[0])
    return progs


# -- real values for placeholders ----------------------------------------------


NOTEBOOK_JSON = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["total = sum(range(10))\n", "print('total', total)"],
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "file_extension": ".py"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def workdir(tmp_path):
    """A folder with a notebook, a script and a kernelspec for the placeholders."""
    (tmp_path / "analysis.ipynb").write_text(json.dumps(NOTEBOOK_JSON), encoding="utf-8")
    (tmp_path / "analysis.py").write_text("print('total', sum(range(10)))\n", encoding="utf-8")
    (tmp_path / "script.py").write_text("print('hello from the script')\n", encoding="utf-8")
    spec = tmp_path / "kernels" / "demo"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Demo", "language": "python"}),
        encoding="utf-8",
    )
    (tmp_path / "runtime").mkdir()
    return tmp_path


def values(workdir):
    return {
        "NOTEBOOK": str(workdir / "analysis"),
        "SCRIPT": str(workdir / "script"),
        "KERNELSPEC_DIR": str(workdir / "kernels" / "demo"),
        "PYTHON": sys.executable,
    }


def substitute(cmd, workdir):
    real = values(workdir)
    missing = placeholders_in(cmd) - set(real)
    assert not missing, f"no real value for {sorted(missing)}: this command cannot run"
    for name, value in real.items():
        cmd = re.sub(rf"\b{name}\b", lambda _m, v=value: shlex.quote(v), cmd)
    # The docs say `python` or `python3`: use the interpreter running the tests.
    return re.sub(r"(^|(?<=\s))python3?(?=\s|$)", shlex.quote(sys.executable), cmd)


def environment(workdir, **extra):
    env = dict(os.environ)
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    # Keep Jupyter's runtime files (and `jupyter server list`'s clean-up) to ourselves.
    env["JUPYTER_RUNTIME_DIR"] = str(workdir / "runtime")
    env["WIZARD_DOCS_URL"] = DOCS_URL
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env


def run(argv, workdir, env, timeout=180):
    return subprocess.run(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the pages as a whole ---------------------------------------------------------


def test_the_pages_show_commands():
    assert len(pages()) >= 7, [p.name for p in pages()]
    assert len(COMMANDS) >= 30, "fewer console commands than the pages are known to show"
    assert WIZARD, "no page shows `python -m wizard`"
    on_hub = [cmd for page, _, cmd in COMMANDS if page == "index.rst"]
    assert "python3 wizard.pyz" in on_hub


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.name)
def test_shell_commands_are_in_console_blocks(path):
    """A `$ ` line outside a console block would escape this test; so would `\\`."""
    inside = {number for _, body in console_blocks(path) for number, _ in body}
    lines = path.read_text(encoding="utf-8").splitlines()
    stray = [
        f"{path.name}:{n}: {t.strip()}"
        for n, t in enumerate(lines, 1)
        if t.strip().startswith("$ ") and n not in inside
    ]
    assert not stray, "shell commands belong in console code blocks:\n" + "\n".join(stray)
    continued = [f"{path.name}:{n}: {c}" for n, c in commands_of(path) if c.endswith("\\")]
    assert not continued, "one command per line, no continuation:\n" + "\n".join(continued)


@pytest.mark.parametrize(("page", "number", "cmd"), COMMANDS, ids=IDS)
def test_placeholders_are_explained(page, number, cmd):
    words = placeholders_in(cmd)
    unknown = words - set(PLACEHOLDERS)
    assert not unknown, (
        f"{page}:{number}: {sorted(unknown)} look like placeholders: add them to PLACEHOLDERS "
        "(and give them a real value if the command runs) or to LITERALS"
    )
    prose = prose_of(DOCS / page)
    unexplained = [w for w in words if not re.search(rf"\b{w}\b", prose)]
    assert not unexplained, (
        f"{page}:{number}: the page never tells the reader what {unexplained} is"
    )


@pytest.mark.parametrize(("page", "number", "cmd"), OTHER, ids=OTHER_IDS)
def test_every_command_is_classified(page, number, cmd):
    action, _ = rule_for(cmd)
    assert action, (
        f"{page}:{number}: `{cmd}` matches no rule: add it to RULES (run it or say why not)"
    )


# -- programs exist -------------------------------------------------------------


@pytest.mark.parametrize(("page", "number", "cmd"), OTHER, ids=OTHER_IDS)
def test_programs_exist(page, number, cmd, tmp_path):
    path = environment(tmp_path)["PATH"]
    for prog in programs(cmd):
        if prog in ("python", *PROGRAM_PLACEHOLDERS) or prog in ELSEWHERE:
            continue
        found = shutil.which(prog, path=path)
        hint = f" (Debian package {APT[prog]})" if prog in APT else ""
        need(found, f"{page}:{number}: `{prog}` is not installed{hint}")


# -- the read-only commands run -----------------------------------------------------


RUNNABLE = [c for c in OTHER if rule_for(c[2])[0] in (RUN, RUN_0_OR_1)]
RUNNABLE_IDS = [f"{page}:{number}" for page, number, _ in RUNNABLE]
CGROUP = [c for c in OTHER if rule_for(c[2])[0] == RUN_IF_PRESENT]


def run_shown(page, number, cmd, workdir, allowed=(0,)):
    """Run a command as the page shows it, in bash, with the placeholders filled in."""
    env = environment(workdir)
    for prog in programs(cmd):
        if prog not in ("python", *PROGRAM_PLACEHOLDERS):
            hint = f" (Debian package {APT[prog]})" if prog in APT else ""
            need(shutil.which(prog, path=env["PATH"]), f"`{prog}` is not installed{hint}")
    result = run(["bash", "-c", substitute(cmd, workdir)], workdir, env)
    assert result.returncode in allowed, (
        f"{page}:{number}: `{cmd}` exited {result.returncode}\n{result.stderr[-2000:]}"
    )
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr[-2000:]
    return result


@pytest.mark.parametrize(("page", "number", "cmd"), RUNNABLE, ids=RUNNABLE_IDS)
def test_read_only_commands_run(page, number, cmd, workdir):
    action, _ = rule_for(cmd)
    result = run_shown(page, number, cmd, workdir, (0, 1) if action == RUN_0_OR_1 else (0,))
    if action == RUN:
        shown = result.stdout + result.stderr
        assert shown.strip(), f"{page}:{number}: `{cmd}` printed nothing"
    if "nbconvert --to notebook --execute" in cmd:
        executed = json.loads((workdir / "analysis.nbconvert.ipynb").read_text(encoding="utf-8"))
        text = "".join("".join(o.get("text", "")) for o in executed["cells"][0]["outputs"])
        assert "total 45" in text
    if "nbconvert --to script" in cmd:
        assert "sum(range(10))" in (workdir / "analysis.py").read_text(encoding="utf-8")


def test_cgroup_files_the_docs_show_are_read(workdir):
    """cgroup v1 and v2 name their files differently: the ones present here must read."""
    need(Path("/sys/fs/cgroup").is_dir(), "no /sys/fs/cgroup on this machine")
    assert CGROUP, "the pages show no cgroup file"
    present = [c for c in CGROUP if Path(shlex.split(c[2])[-1]).exists()]
    assert present, f"none of {[c[2] for c in CGROUP]} exists on this machine"
    for page, number, cmd in present:
        assert run_shown(page, number, cmd, workdir).stdout.strip()


# -- the wizard's own lines ------------------------------------------------------------


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    """wizard.pyz built the way the site builds its download."""
    from wizard_site import build_pyz

    dest = tmp_path_factory.mktemp("pyz") / "wizard.pyz"
    return build_pyz(ROOT / "wizard", dest, "wizard.commands.cli:main")


_COMMANDS = {}


def wizard_commands():
    """The wizard's sub-commands: name -> whether its module is there."""
    if not _COMMANDS:
        code = (
            "import json; from wizard.commands import registry as cli; "
            "print(json.dumps({n: n in cli.available_commands() for n in cli.COMMANDS}))"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        _COMMANDS.update(json.loads(out.stdout))
    return _COMMANDS


def wizard_argv(cmd, workdir, pyz_path):
    match = WIZARD_LINE.match(cmd)
    assignments = dict(a.split("=", 1) for a in match.group(1).split())
    args = shlex.split(substitute(match.group(3) or "", workdir))
    subcommand = args and not args[0].startswith("-")
    if not subcommand and not {"--no-input", "--help", "-h", "--version"} & set(args):
        args.append("--no-input")
    if args[:1] == ["watch"] and not {"--once", "--duration", "--help", "-h"} & set(args):
        args += ["--duration", "1s"]  # it runs until stopped: a second shows it works
    if match.group(2) == "wizard.pyz":
        return [sys.executable, str(pyz_path), *args], assignments, args
    return [sys.executable, "-m", "wizard", *args], assignments, args


@pytest.mark.parametrize(("page", "number", "cmd"), WIZARD, ids=WIZARD_IDS)
def test_wizard_lines_run(page, number, cmd, workdir, pyz):
    argv, assignments, args = wizard_argv(cmd, workdir, pyz)
    if args and not args[0].startswith("-"):
        known = wizard_commands()
        assert args[0] in known, f"{page}:{number}: `{args[0]}` is not a wizard command"
        need(known[args[0]], f"{page}:{number}: the wizard has no `{args[0]}` command yet")
    env = environment(workdir, **assignments)
    env["WIZARD_DB"] = str(workdir / "history.sqlite3")  # never the user's own record
    if "wizard.pyz" in cmd:
        env.pop("PYTHONPATH", None)  # the download must work on its own
    else:
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    result = run(argv, workdir, env)
    out = result.stdout + result.stderr
    assert result.returncode in (0, 1), (
        f"{page}:{number}: `{cmd}` exited {result.returncode}\n{result.stderr[-2000:]}"
    )
    assert "Traceback" not in out, out[-3000:]
    assert "internal error" not in result.stderr, result.stderr[-2000:]
    if "--json" in args:
        report = json.loads(result.stdout)
        sub = args[0] if args and not args[0].startswith("-") else None
        assert report["schema"] == (f"kernel-wizard-{sub}/1" if sub else "kernel-wizard/2")
        if sub:
            return
        base = assignments.get("WIZARD_DOCS_URL", DOCS_URL)
        if "--docs-url" in args:
            base = args[args.index("--docs-url") + 1]
        assert report["docs_url"] == base
        for finding in report["findings"]:
            assert finding["url"].startswith(base), finding
    else:
        assert result.stdout.strip(), f"{page}:{number}: `{cmd}` printed nothing"
