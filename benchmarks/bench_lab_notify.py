"""How fast a death reaches the page, and what an idle JupyterLab tab costs the server.

    python benchmarks/bench_lab_notify.py [--kills 10] [--idle-seconds 60] [--json]

A real Jupyter server with wizard.server_ext runs in a child memory cgroup (400 MiB,
cgroup v1, needs root) and headless Chromium opens ``big.ipynb`` in JupyterLab. Each
round runs a cell that allocates past the limit: the kernel is OOM-killed, the server
restarts it, and the notification names the kill. Per round:

- the server's moment: the time of its log line "wizard.server_ext: kernel ... ended:
  oom-kill" (written when the provisioner reported the exit and the death was stored;
  the event is emitted right after);
- the page's moment: a MutationObserver in the page notes when the notification's text
  changes to tell of that death (a notebook keeps one notification, updated in place).

Figures: the median and the worst of (page - server) over the rounds, target median
<= 0.5 s; then, with the tab left alone for ``--idle-seconds``, the requests the plugin
sent (target 0: deaths come on the server's event stream) beside all the requests of
the tab (JupyterLab's own polls of kernels, sessions and contents, for scale).
Both clocks are this machine's.
"""

import argparse
import datetime
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

MEDIAN_TARGET = 0.5  # seconds
LIMIT = 400 << 20
ENDED = re.compile(
    r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \w+\] wizard\.server_ext: kernel (\S+) "
    r"\(pid (\d+)\) ended: oom-kill",
    re.M,
)
OBSERVER = """
() => {
  window.__kwTimes = [];
  const seen = new Set();
  const note = () => {
    for (const t of document.querySelectorAll('.Toastify__toast')) {
      const text = t.textContent || '';
      if (text.includes('out-of-memory') && !seen.has(text)) {
        seen.add(text);
        window.__kwTimes.push([Date.now() / 1000, text]);
      }
    }
  };
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}
"""


def server_times(log_text):
    """``[epoch seconds]`` of the server's oom-kill log lines, in order."""
    out = []
    for m in ENDED.finditer(log_text):
        local = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        out.append(local.timestamp())  # the server logs local time, as this process reads it
    return out


def run(kills, idle_seconds):
    import jupyter_fixtures
    import test_lab_extension as lab
    from cgroups import child_cgroup

    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-notify-"))
    server = jupyter_fixtures.JupyterServer(
        tmp / "server",
        # kills in a row: the server's restarter would give up after 5 quick deaths
        extra_args=[lab.ENABLE, "--KernelRestarter.restart_limit=1000"],
        env={"WIZARD_DB": str(tmp / "history.sqlite3"), "WIZARD_WATCH_INTERVAL": "0.5"},
    )
    latencies = []
    with child_cgroup(LIMIT, prefix="wizard-bench") as cg:
        try:
            server.root_dir.mkdir(parents=True)
            lab._notebook(server.root_dir / "big.ipynb", lab.HOG)
            server.start()
            cg.add(server.pid)
            with lab.browser_context(tmp) as context:
                errors = []
                page = lab._open(context, server, "big.ipynb", errors)
                page.evaluate(OBSERVER)
                for n in range(1, kills + 1):
                    lab._idle(server, "big.ipynb")
                    lab._run_first_cell(page)
                    page.wait_for_function(f"() => window.__kwTimes.length >= {n}", timeout=120_000)
                    page_at = page.evaluate("() => window.__kwTimes")[n - 1][0]
                    lab._wait(lambda n=n: len(server_times(server.log_path.read_text())) >= n)
                    server_at = server_times(server.log_path.read_text())[n - 1]
                    latencies.append(page_at - server_at)
                    print(f"kill {n}: {latencies[-1] * 1000:.0f} ms", file=sys.stderr, flush=True)
                    lab._dismiss_dialogs(page)  # JupyterLab's own "Kernel Restarting"
                mine, every = [], []
                page.on("request", lambda r: every.append(r.url))
                page.on("request", lambda r: "/api/kernel-wizard" in r.url and mine.append(r.url))
                page.wait_for_timeout(idle_seconds * 1000)
                page.close()
        finally:
            server.stop()
    return {
        "kills": kills,
        "latencies_s": latencies,
        "median_s": statistics.median(latencies),
        "worst_s": max(latencies),
        "idle_seconds": idle_seconds,
        "plugin_requests": len(mine),
        "tab_requests": len(every),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    got = run(args.kills, args.idle_seconds)
    if args.json:
        print(json.dumps(got))
        return 0
    print(
        f"death seen by the server -> notification in the page, over {got['kills']} OOM kills: "
        f"median {got['median_s'] * 1000:.0f} ms (target <= {MEDIAN_TARGET * 1000:.0f}), "
        f"worst {got['worst_s'] * 1000:.0f} ms"
    )
    print(
        f"requests the plugin sent from an idle tab in {got['idle_seconds']:g} s: "
        f"{got['plugin_requests']} (target 0); all requests of the tab: {got['tab_requests']} "
        "(JupyterLab's own polls)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
