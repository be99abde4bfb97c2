"""Details: the wizard's report, as ``python -m wizard --no-input -v`` gives it, from
inside the server that answers.

The machine's facts (memory, cgroups, the kernel log, kernelspecs) are the wizard's
own probes. This server is not asked over HTTP, it is read in process: it answers,
so it is never reported as refusing, and its kernels' states are its kernel
manager's. The kernels and deaths listed are this server's own.
"""

import io
import os

from wizard.server.shapes import OwnKernel


def build(own, own_ids, docs_url=None, server_pid=None):
    """``(exit code, text)``; ``own`` is ``[OwnKernel]`` read on the event loop."""
    from wizard.base import exitcodes
    from wizard.diagnosis import docs_map, rules
    from wizard.probes import servers
    from wizard.probes.collect import gather
    from wizard.report import text as render_text
    from wizard.report.context import Context

    pid = server_pid or os.getpid()
    facts = gather()
    _as_read_in_process(facts, pid, own)
    own_pids = set()
    kept = []
    for k in (facts.get("kernels") or {}).get("kernels") or []:
        if k.get("kernel_id") in own_ids or k.get("server_pid") == pid:
            kept.append(k)
            own_pids.add(k.get("pid"))
    facts["kernels"]["kernels"] = kept
    servers.merge(facts["kernels"], facts["servers"])
    facts["deaths"] = [d for d in facts.get("deaths") or [] if d.get("kernel_id") in own_ids]
    facts["errors"] = [e for e in facts.get("errors") or [] if f"pid {pid}" not in str(e)]
    findings = rules.evaluate(facts, docs_map.docs_base(docs_url))
    out = io.StringIO()
    ctx = Context(
        stdin=io.StringIO(),
        stdout=out,
        stderr=io.StringIO(),
        environ={"NO_COLOR": "1", "TERM": "dumb"},
    )
    render_text.write(ctx, facts, findings, verbose=True)
    code = exitcodes.PROBLEM if findings else exitcodes.OK
    return code, out.getvalue()


def _as_read_in_process(facts, pid, own):
    """This server's entry: reachable, no error, its kernels as its kernel manager has them."""
    kernels = [_listed(k) for k in own]
    for s in (facts.get("servers") or {}).get("servers") or []:
        if s.get("pid") == pid:
            s["reachable"], s["error"] = True, None
            s["kernels"] = kernels
            s["read_in_process"] = True


def _listed(k: OwnKernel):
    return {
        "id": k["kernel_id"],
        "name": k["kernel_name"],
        "execution_state": k["execution_state"],
        "last_activity": None,
    }
