"""Rules on kernels, kernelspecs and servers: idle or many kernels, broken specs, hung servers."""

from wizard.base import fmt
from wizard.base.thresholds import IDLE_SECONDS, MANY_KERNELS
from wizard.diagnosis import idle
from wizard.diagnosis.common import (
    WARNING,
    halt_commands,
    kernels_of,
    quote,
)


def idle_kernels(facts):
    idle_ones = idle.worth_halting(kernels_of(facts))
    if not idle_ones:
        return None
    held = sum(k.get("rss_bytes") or 0 for k in idle_ones)
    names = ", ".join(k.get("notebook") or f"pid {k['pid']}" for k in idle_ones[:3])
    return {
        "message": f"{len(idle_ones)} kernel(s) idle for over {fmt.duration(IDLE_SECONDS)} "
        f"hold {fmt.size(held)}: {names}{', ...' if len(idle_ones) > 3 else ''}.",
        "hint": "Closing a tab does not stop a kernel: shut down the ones you are not using.",
        "commands": halt_commands(idle_ones),
    }


def many_kernels(facts):
    ks = kernels_of(facts)
    if len(ks) < MANY_KERNELS:
        return None
    held = sum(k.get("rss_bytes") or 0 for k in ks)
    return {
        "message": f"{len(ks)} kernels are running, holding {fmt.size(held)}.",
        "hint": "Each open notebook keeps its kernel and its memory until it is shut down.",
        "commands": halt_commands(ks),
    }


def spec_problem(spec):
    return spec.get("problem") or (spec.get("deep") or {}).get("detail") or "cannot start"


def kernelspec_broken(facts):
    specs = (facts.get("kernelspecs") or {}).get("kernelspecs") or []
    bad = [s for s in specs if not s.get("ok") or (s.get("deep") or {}).get("ok") is False]
    if not bad:
        return None
    first = bad[0]
    problem = spec_problem(first)
    return {
        "message": f"Kernelspec {first['name']!r}: {problem}"
        + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        + ".",
        "hint": "A kernel that cannot start dies at once: reinstall it, or remove the broken spec.",
        "commands": [
            "jupyter kernelspec list",
            # each spec's own interpreter that lacks ipykernel: that is where it belongs (never
            # a bare python3, which installs into another Python)
            *dict.fromkeys(
                f"{quote(s['argv0_path'])} -m pip install ipykernel"
                for s in bad
                if s.get("argv0_path") and "ipykernel" in spec_problem(s)
            ),
            f"jupyter kernelspec remove -y {quote(first['name'])}",
        ],
        "evidence": [f"{s['name']}: {spec_problem(s)}" for s in bad],
    }


def server_unreachable(facts):
    servers = (facts.get("servers") or {}).get("servers") or []
    bad = [s for s in servers if s.get("alive") and s.get("reachable") is False]
    refused = [s for s in servers if s.get("alive") and s.get("reachable") and s.get("error")]
    locked = [s for s in refused if s.get("needs_password")]
    if not bad and locked:  # a password-only server: healthy, but closed to the wizard
        return {
            "severity": WARNING,
            "message": f"A Jupyter server (pid {locked[0]['pid']}) needs a password, which the "
            "wizard does not have (the server has no token): its kernels' notebooks are not "
            "listed here.",
            "hint": "Shut a kernel down from that server's own page in the browser (Running, or "
            "Kernel > Shut Down Kernel), or halt it by its pid as listed above; to let the "
            "wizard see its notebooks, start the server with a token.",
        }
    if not bad and refused:  # it answers, but not with what was asked: not a healthy server
        return {
            "severity": WARNING,
            "message": f"A Jupyter server (pid {refused[0]['pid']}) answers but refuses the "
            f"wizard's requests: {refused[0]['error']}; its kernels could not be listed.",
            "hint": "Check the server's log and its token or password settings; the kernels "
            "of that server are missing from this report.",
        }
    if not bad:
        return None
    return {
        "message": f"A Jupyter server (pid {bad[0]['pid']}) is running but does not answer: "
        f"{bad[0].get('error') or 'no reply'}.",
        "hint": "A hung server cannot restart kernels: save what you can, then restart it.",
    }


def plain_server(facts):
    if facts.get("intentional"):
        return None
    found = {f["id"] for f in facts.get("_found", [])}
    if "no-memory-evidence" not in found and "native-crash" not in found:
        return None
    fb = (facts.get("servers") or {}).get("fallback") or {}
    if fb.get("cocalc"):
        hint = "In CoCalc: Project Settings, then Plain Jupyter Server; open the notebook there."
    elif fb.get("command"):
        hint = "Start a plain Jupyter server and open the notebook there."
    else:
        hint = "No Jupyter server is installed in this Python: install one to compare."
    return {
        "message": "If the notebook works in a plain Jupyter server, the usual interface is "
        "at fault, not the code.",
        "hint": hint,
        "commands": [fb["command"]] if fb.get("command") and not fb.get("cocalc") else [],
    }
