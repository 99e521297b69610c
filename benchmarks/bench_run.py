"""Time to verdict of `vxcap run --lab`: one pair vs --all-pairs on a 16-node, 4-subnet lab.

Each run is a separate `python -m vxcap` process on a lab built once beforehand
(its build time is reported as set-up). Figures come from the run's own
report.json timings, so the split is the pipeline's stages; the ratio
all-pairs / one pair is what the README quotes. Needs root.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from lab_runs import SPLIT, timed_run, vxcap  # this folder: the scripts run as files

PREFIX = "vxbench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--subnets", type=int, default=4)
    parser.add_argument("--pair", default="worker,worker15", help="the single pair (default: across subnets)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_run needs root (it builds the namespace lab)")

    started = time.perf_counter()
    up = vxcap("lab", "up", "--prefix", PREFIX, "--nodes", str(args.nodes), "--subnets", str(args.subnets))
    setup = time.perf_counter() - started
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stderr.strip() or up.stdout.strip()}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            one = timed_run(PREFIX, Path(tmp), "--pair", args.pair)
            every = timed_run(PREFIX, Path(tmp), "--all-pairs")
    finally:
        vxcap("lab", "down", "--prefix", PREFIX)

    print(f"lab: {args.nodes} nodes on {args.subnets} subnets, built in {setup:.2f} s")
    print(f"{'run':<12}{'dirs':>6}{'pcaps':>7}{'wall s':>9}" + "".join(f"{k:>10}" for k in SPLIT) + "  verdict")
    for name, r in (("one pair", one), ("all pairs", every)):
        print(f"{name:<12}{r['directions']:>6}{r['captures']:>7}{r['wall']:>9.2f}"
              + "".join(f"{r['split'][k]:>10.2f}" for k in SPLIT) + f"  {r['verdict']}")
    print(f"all pairs / one pair: {every['wall'] / one['wall']:.2f}x time for "
          f"{every['directions'] // max(one['directions'], 1)}x the directions")


if __name__ == "__main__":
    main()
