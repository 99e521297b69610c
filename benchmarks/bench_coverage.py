"""Coverage at scale: `vxcap run --lab --coverage` on labs of 16, 64 and 256 nodes, each
against a one-pair run on the same lab in the same script; then discovery, planning and
provisioning on a 1,000-node cluster served by the HTTP fake API, against the 4-node one.

For each lab size: the lab is built once (its build time is reported as set-up), then one
`python -m vxcap run --lab --json` process for one pair across subnets and one for
`--coverage` (`--repeat N`: N of each, alternated, the medians compared). Reported: directions planned, captures, wall time and the split from
report.json's own stage timings, and the ratio coverage / one pair. The lab part needs
root; `--cluster-only` runs the fake-cluster part alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from lab_runs import SPLIT, timed_run, vxcap  # this folder: the scripts run as files

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fake API lives with the tests

PREFIX = "vxbcov"
SUBNETS = {16: 4, 64: 8, 256: 16}


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time, with the range of all of them: one run on a shared 2-core
    machine says little."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    middle = dict(ordered[len(ordered) // 2])
    middle["walls"] = [r["wall"] for r in runs]
    middle["cpus"] = [r["cpu"] for r in runs]
    return middle


def bench_size(nodes: int, seed: int, repeat: int = 1) -> dict:
    subnets = SUBNETS.get(nodes, max(1, nodes // 16))
    started = time.perf_counter()
    up = vxcap("lab", "up", "--prefix", PREFIX, "--nodes", str(nodes), "--subnets", str(subnets))
    setup = time.perf_counter() - started
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stderr.strip() or up.stdout.strip()}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # worker and the last node: on the first and the last subnet, so the pair is VXLAN both ways.
            ones, covers = [], []
            for _ in range(repeat):  # alternated, so both see the same load
                ones.append(timed_run(PREFIX, Path(tmp), "--pair", f"worker,worker{nodes - 1}"))
                covers.append(timed_run(PREFIX, Path(tmp), "--coverage", "--seed", str(seed)))
            one, cover = median_run(ones), median_run(covers)
    finally:
        vxcap("lab", "down", "--prefix", PREFIX)
    return {"nodes": nodes, "subnets": subnets, "setup": setup, "one": one, "coverage": cover}


def bench_cluster(count: int, subnets: int, seed: int) -> dict:
    """Discovery, the coverage plan, test pods for every node Ready, and their removal, on the fake API."""
    from tests.fakes import calico_objects as co
    from tests.fakes.kube_api import FakeKube
    from tests.fakes.large_cluster import large_cluster
    from vxcap.adapters.kube import KubeCluster
    from vxcap.core.coverage import coverage_plan

    options = large_cluster(count, subnets) if count > 4 else {"nodes": co.lab_nodes()}
    kube = FakeKube(**options).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = kube.write_kubeconfig(Path(tmp) / "kubeconfig")
            cluster = KubeCluster(str(config), None)
            try:
                started = time.perf_counter()
                topology = cluster.discover()
                discovered = time.perf_counter()
                plan = coverage_plan(topology, seed)
                planned = time.perf_counter()
                nodes = tuple(dict.fromkeys(n for p in plan.pairs for n in (p.pair.a, p.pair.b)))
                cluster.create_test_pods("bench", nodes, timeout=600)
                provisioned = time.perf_counter()
                removed = cluster.delete_run("bench")
                cleaned = time.perf_counter()
            finally:
                cluster.close()
        posts = len(kube.requested("POST", r"/api/v1/namespaces/[^/]+/pods$"))
        deletes = len(kube.requested("DELETE", r"/api/v1/namespaces/[^/]+/pods"))
    finally:
        kube.stop()
    return {"nodes": count, "pairs": len(plan.pairs), "pods": len(nodes), "removed": len(removed),
            "discover": discovered - started, "plan": planned - discovered, "provision": provisioned - planned,
            "cleanup": cleaned - provisioned, "posts": posts, "deletes": deletes}


def report_cluster(seed: int) -> None:
    bench_cluster(4, 2, seed)  # warm-up: the client's first connection and imports are not the cluster's size
    small, large = bench_cluster(4, 2, seed), bench_cluster(1000, 20, seed)
    print(f"{'fake cluster':<14}{'pairs':>7}{'pods':>6}{'discover s':>12}{'plan s':>9}{'provision s':>13}"
          f"{'cleanup s':>11}{'POSTs':>7}{'DELETEs':>9}")
    for r in (small, large):
        print(f"{r['nodes']:>5} nodes    {r['pairs']:>7}{r['pods']:>6}{r['discover']:>12.2f}{r['plan']:>9.3f}"
              f"{r['provision']:>13.2f}{r['cleanup']:>11.2f}{r['posts']:>7}{r['deletes']:>9}")
    print(f"1,000 nodes / 4 nodes: discovery {large['discover'] / small['discover']:.1f}x, "
          f"provisioning {large['provision'] / small['provision']:.1f}x for {large['pods'] // small['pods']}x the pods")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256", help="lab sizes (nodes), comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cluster-only", action="store_true", help="only the 1,000-node fake cluster")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each kind per lab size, alternated; the median is shown, with the range")
    parser.add_argument("--labs-only", action="store_true", help="only the labs, not the fake cluster")
    args = parser.parse_args()
    if not args.labs_only:
        report_cluster(args.seed)
        print()
    if args.cluster_only:
        return
    if os.geteuid() != 0:
        raise SystemExit("the lab part of bench_coverage needs root (it builds the namespace lab)")
    results = [bench_size(int(n), args.seed, args.repeat) for n in args.sizes.split(",")]

    print(f"{'lab':<16}{'run':<10}{'dirs':>6}{'pcaps':>7}{'wall s':>8}{'cpu s':>7}" + "".join(f"{k:>12}" for k in SPLIT)
          + "  verdict")
    for r in results:
        for name in ("one", "coverage"):
            run = r[name]
            print(f"{r['nodes']:>4} nodes/{r['subnets']:<2} sn {name:<10}{run['directions']:>6}{run['captures']:>7}"
                  f"{run['wall']:>8.2f}{run['cpu']:>7.2f}" + "".join(f"{run['split'][k]:>12.2f}" for k in SPLIT)
                  + f"  {run['verdict']}")
    print()
    for r in results:
        all_pairs = r["nodes"] * (r["nodes"] - 1)
        one, cover = r["one"], r["coverage"]
        spread = (f" (runs {len(cover['walls'])} each: one pair {min(one['walls']):.2f}-{max(one['walls']):.2f} s, "
                  f"coverage {min(cover['walls']):.2f}-{max(cover['walls']):.2f} s; pairwise "
                  + ", ".join(f"{c / o:.2f}x" for o, c in zip(one["walls"], cover["walls"]))
                  + "; cpu s (user + system, every process) one pair "
                  + ", ".join(f"{c:.2f}" for c in one["cpus"]) + ", coverage "
                  + ", ".join(f"{c:.2f}" for c in cover["cpus"]) + ")"
                  if len(cover["walls"]) > 1 else "")
        print(f"{r['nodes']} nodes (built in {r['setup']:.1f} s): coverage {cover['directions']} directions "
              f"of {all_pairs} ({100 * cover['directions'] / all_pairs:.1f}%), "
              f"{cover['wall'] / one['wall']:.2f}x the one-pair run (medians){spread}")


if __name__ == "__main__":
    main()
