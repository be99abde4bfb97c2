"""What one memory probe and one read of the kernel log cost on this machine.

    python benchmarks/bench_probes.py [--rounds 20]

Targets: the memory probe (no kernel log) under 5 ms at best of the rounds; reading
/dev/kmsg (root) under 1 s. Prints each figure beside its target; exits 1 when one is
missed. The test suite only checks that they finish (a hang), not how fast.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wizard.probes import memory
from wizard.system import kmsg
from wizard.system.sysroot import SysRoot

PROBE_TARGET = 0.005
KMSG_TARGET = 1.0


def best_of(rounds, fn):
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    root = SysRoot("/")
    ok = True
    probe = best_of(args.rounds, lambda: memory.probe(root, oom_log=False))
    print(f"memory probe: {probe * 1000:.2f} ms at best (target < {PROBE_TARGET * 1000:g} ms)")
    ok &= probe < PROBE_TARGET
    if os.geteuid() == 0:
        read = best_of(3, lambda: kmsg.read_kmsg(root))
        print(f"kernel log read: {read * 1000:.1f} ms at best (target < {KMSG_TARGET:g} s)")
        ok &= read < KMSG_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
