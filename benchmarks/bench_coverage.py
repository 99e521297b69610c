"""Coverage at scale: `vxcap run --lab --coverage` on labs of 16, 64 and 256 nodes, each
against a one-pair run on the same lab in the same script.

For each size: the lab is built once (its build time is reported as set-up), then one
`python -m vxcap run --lab --json` process for one pair across subnets and one for
`--coverage`. Reported: directions planned, captures, wall time and the split from
report.json's own stage timings, and the ratio coverage / one pair. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREFIX = "vxbcov"
SUBNETS = {16: 4, 64: 8, 256: 16}
SPLIT = {
    "set-up": ("discover", "plan", "provision"),
    "capture": ("capture",),
    "probe": ("probe", "mtu-probe"),
    "stop+tables": ("stop",),
    "decode": ("decode", "judge"),
    "report": ("report", "evidence", "cross-check"),
}


def vxcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vxcap", *args], capture_output=True, text=True)


def timed_run(out: Path, *selection: str) -> dict:
    started = time.perf_counter()
    proc = vxcap("run", "--lab", "--prefix", PREFIX, "--out", str(out), "--json", *selection)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"vxcap run failed ({proc.returncode}): {proc.stderr.strip()}")
    report = json.loads(proc.stdout)
    run_dir = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    timings = report.get("timings", {})
    return {
        "wall": wall,
        "verdict": report["verdict"],
        "directions": len(report["flows"]),
        "captures": len(list(run_dir.glob("*.pcap"))),
        "split": {name: sum(timings.get(s, 0.0) for s in stages) for name, stages in SPLIT.items()},
    }


def bench_size(nodes: int, seed: int) -> dict:
    subnets = SUBNETS.get(nodes, max(1, nodes // 16))
    started = time.perf_counter()
    up = vxcap("lab", "up", "--prefix", PREFIX, "--nodes", str(nodes), "--subnets", str(subnets))
    setup = time.perf_counter() - started
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stderr.strip() or up.stdout.strip()}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # worker and the last node: on the first and the last subnet, so the pair is VXLAN both ways.
            one = timed_run(Path(tmp), "--pair", f"worker,worker{nodes - 1}")
            cover = timed_run(Path(tmp), "--coverage", "--seed", str(seed))
    finally:
        vxcap("lab", "down", "--prefix", PREFIX)
    return {"nodes": nodes, "subnets": subnets, "setup": setup, "one": one, "coverage": cover}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256", help="lab sizes (nodes), comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_coverage needs root (it builds the namespace lab)")
    results = [bench_size(int(n), args.seed) for n in args.sizes.split(",")]

    print(f"{'lab':<16}{'run':<10}{'dirs':>6}{'pcaps':>7}{'wall s':>8}" + "".join(f"{k:>12}" for k in SPLIT)
          + "  verdict")
    for r in results:
        for name in ("one", "coverage"):
            run = r[name]
            print(f"{r['nodes']:>4} nodes/{r['subnets']:<2} sn {name:<10}{run['directions']:>6}{run['captures']:>7}"
                  f"{run['wall']:>8.2f}" + "".join(f"{run['split'][k]:>12.2f}" for k in SPLIT) + f"  {run['verdict']}")
    print()
    for r in results:
        all_pairs = r["nodes"] * (r["nodes"] - 1)
        print(f"{r['nodes']} nodes (built in {r['setup']:.1f} s): coverage {r['coverage']['directions']} directions "
              f"of {all_pairs} ({100 * r['coverage']['directions'] / all_pairs:.1f}%), "
              f"{r['coverage']['wall'] / r['one']['wall']:.2f}x the one-pair run")


if __name__ == "__main__":
    main()
