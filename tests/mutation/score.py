"""Print the mutation score per module from mutmut's results; exit 1 under the target.

    python tests/mutation/score.py [--target 90]

Reads ``mutmut results --all true`` (run after ``mutmut run``). A mutant counts as
killed when a test failed or it timed out; "no tests" and survivors count against the
score, except the survivors listed in tests/mutation/EQUIVALENT.md (they cannot be
told apart from the original by any test).
"""

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KILLED = {"killed", "timeout"}
# Modules counted in part: only these functions (``Class.*`` for all of a class's
# methods). The rest of them (request handlers, process readers, HTTP) is tested
# against real servers, which run the unmutated package.
SCOPE = {
    "wizard.probes.servers": {"scrub"},
    "wizard.server.api": {
        "death_answer",
        "_float_arg",
        "parse_deaths_query",
        "parse_halt_body",
        "_ids",
        "relative_notebook",
    },
    "wizard.server.metrics": {
        "DeathCounter.*",
        "build",
        "_label_value",
        "_number",
        "text",
        "check_textfile_dir",
        "write_textfile",
        "RecorderMetrics.*",
        "Textfile.*",
    },
}


def function_of(name, module):
    """``scrub`` or ``DeathCounter.record`` from a mutant's name."""
    rest = name[len(module) + 1 :].split("__mutmut_")[0]
    if rest.startswith("x\u01c1"):
        cls, _, meth = rest[2:].partition("\u01c1")
        return f"{cls}.{meth}"
    return rest[2:] if rest.startswith("x_") else rest


def in_scope(name, module):
    scope = SCOPE.get(module)
    if scope is None:
        return True
    fn = function_of(name, module)
    return fn in scope or f"{fn.split('.')[0]}.*" in scope


def equivalent():
    text = (HERE / "EQUIVALENT.md").read_text(encoding="utf-8")
    return set(re.findall(r"`(wizard\.[\w.]+__mutmut_\d+)`", text))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=float, default=90.0)
    args = ap.parse_args()
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    same = equivalent()
    per = collections.defaultdict(collections.Counter)
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" not in name:
            continue
        module = name.split(".x", 1)[0].split(".x\u01c1", 1)[0]
        module = re.sub(r"\.(x_|x\u01c1).*$", "", name.split("__mutmut_")[0])
        status = status.strip()
        if not in_scope(name, module):
            continue
        if status == "survived" and name in same:
            status = "equivalent"
        per[module][status] += 1
    if not per:
        print("no mutants: run `mutmut run` first", file=sys.stderr)
        return 1
    low = False
    total = collections.Counter()
    print(f"{'module':40} {'killed':>7} {'counted':>8} {'score':>7}   equivalent")
    for module in sorted(per):
        c = per[module]
        total.update(c)
        counted = sum(c.values()) - c["equivalent"]
        killed = sum(c[s] for s in KILLED)
        score = 100.0 * killed / counted if counted else 100.0
        low |= score < args.target
        print(f"{module:40} {killed:7} {counted:8} {score:6.1f}%   {c['equivalent']}")
    counted = sum(total.values()) - total["equivalent"]
    killed = sum(total[s] for s in KILLED)
    print(f"{'all':40} {killed:7} {counted:8} {100.0 * killed / counted:6.1f}%")
    print(f"target: {args.target:g}% in every module")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
