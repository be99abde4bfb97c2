"""What the kernel metrics cost a scrape: ``/metrics`` of a Jupyter server with K kernels,
with the extension ``wizard.server_ext`` and without it, measured in the same run.

    python benchmarks/bench_metrics.py [--kernels 50] [--scrapes 40]

Two real Jupyter servers on loopback, each owning K light kernels: a kernelspec whose
process is ``sleep`` (the server starts, polls and shuts it down like any kernel; it
never answers a message, which a scrape does not need). The extension's collector
walks each kernel's process tree and reads its cgroup at every scrape, so its cost
grows with K. Figures: milliseconds per scrape (median and worst of ``--scrapes``) for
both servers, and their ratio. Both servers take their scrapes in turns so that
whatever else the machine does weighs on both alike.
"""

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

ENABLE = "--ServerApp.jpserver_extensions={'wizard.server_ext': True}"
FAKE_SPEC = {
    "argv": ["/bin/sh", "-c", "exec sleep 100000", "{connection_file}"],
    "display_name": "Sleeper",
    "language": "none",
}


def start_server(base, extension):
    from jupyter_fixtures import JupyterServer

    env = {"PYTHONPATH": str(REPO), "WIZARD_DB": str(base / "history.sqlite3")}
    spec = base / "data" / "kernels" / "sleeper"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(FAKE_SPEC))
    server = JupyterServer(base, extra_args=[ENABLE] if extension else [], env=env)
    return server.start()


def start_kernels(server, n):
    for _ in range(n):
        server.api("POST", "api/kernels", {"name": "sleeper"})
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if len(server.kernels()) >= n:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {len(server.kernels())} of {n} kernels started")


def scrape(conn, token):
    t0 = time.perf_counter()
    conn.request("GET", "/metrics", headers={"Authorization": f"token {token}"})
    resp = conn.getresponse()
    body = resp.read()
    took = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"/metrics: HTTP {resp.status}")
    return took, body.decode()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", type=int, default=50)
    ap.add_argument("--scrapes", type=int, default=40)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        servers = {}
        try:
            for name, ext in (("with", True), ("without", False)):
                servers[name] = start_server(Path(tmp) / name, ext)
                start_kernels(servers[name], args.kernels)
            conns = {
                name: http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
                for name, s in servers.items()
            }
            times = {name: [] for name in servers}
            bodies = {}
            for name in servers:  # one scrape each before measuring: imports, caches
                bodies[name] = scrape(conns[name], servers[name].token)[1]
            for _ in range(args.scrapes):
                for name in servers:
                    took, bodies[name] = scrape(conns[name], servers[name].token)
                    times[name].append(took)
            for c in conns.values():
                c.close()
        finally:
            for s in servers.values():
                s.stop()

    shown = [
        line
        for line in bodies["with"].splitlines()
        if line.startswith("jupyter_kernel_memory_bytes{")
    ]
    print(f"/metrics with {args.kernels} kernels, {args.scrapes} scrapes per server")
    med = {}
    for name in ("without", "with"):
        ms = [t * 1000 for t in times[name]]
        med[name] = statistics.median(ms)
        print(
            f"  {name + ' extension:':20} {med[name]:7.2f} ms per scrape (median), "
            f"{max(ms):7.2f} ms worst, {len(bodies[name])} bytes"
        )
    print(f"ratio with / without (median): {med['with'] / med['without']:.2f}")
    print(f"extra per scrape: {med['with'] - med['without']:.2f} ms")
    print(f"kernel memory series: {len(shown)} ({', '.join(s.split(' ')[0] for s in shown)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
