"""Build the JupyterLab / Notebook 7 plugin into labextension/prebuilt/ (needs Node.js).

    python labextension/build.py           # npm ci when needed, tsc, jupyter labextension build
    python labextension/build.py --check   # only say whether prebuilt/ is current (exit 1 if not)

The build's inputs (``INPUTS``) are hashed into ``prebuilt.sha256`` beside the output,
so that a test can tell, without Node.js, that the committed build is current.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "prebuilt"
HASH_FILE = HERE / "prebuilt.sha256"
INPUTS = ("package.json", "package-lock.json", "tsconfig.json", "src", "style")


def source_files(root=HERE):
    out = []
    for name in INPUTS:
        p = root / name
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            out.append(p)
    return out


def source_hash(root=HERE):
    """One SHA-256 over the names and bytes of every input of the build."""
    h = hashlib.sha256()
    for f in source_files(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


def recorded_hash():
    try:
        return HASH_FILE.read_text().split()[0]
    except (OSError, IndexError):
        return None


def run(cmd, cwd=HERE):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=cwd, check=False).returncode


def build(root=HERE):
    """npm ci (when node_modules is missing), tsc, jupyter labextension build."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm was not found: install Node.js 20 or newer"
    if shutil.which("jupyter") is None and not (Path(sys.executable).parent / "jupyter").exists():
        return "jupyter was not found: pip install jupyterlab"
    if not (root / "node_modules").is_dir() and run([npm, "ci", "--no-audit", "--no-fund"], root):
        return "npm ci failed"
    if run([npm, "exec", "--", "tsc"], root):
        return "tsc failed"
    jupyter = shutil.which("jupyter") or str(Path(sys.executable).parent / "jupyter")
    env_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ["PATH"] = env_path
    if run([jupyter, "labextension", "build", "."], root):
        return "jupyter labextension build failed"
    return None


def main(argv):
    if argv not in ([], ["--check"]):
        print("usage: python labextension/build.py [--check]", file=sys.stderr)
        return 2
    if argv == ["--check"]:
        if recorded_hash() == source_hash():
            print("labextension/prebuilt is current")
            return 0
        print("labextension/prebuilt is out of date: run python labextension/build.py")
        return 1
    error = build()
    if error:
        print(f"labextension/build.py: {error}", file=sys.stderr)
        return 1
    HASH_FILE.write_text(f"{source_hash()}  {' '.join(INPUTS)}\n")
    print(f"built {OUTPUT.relative_to(HERE.parent)}; inputs hashed into {HASH_FILE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
