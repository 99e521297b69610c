"""Starting and stopping every node's capture of a lab built with `vxcap lab up --prefix PREFIX`:
the captures' time bound kept by one watchdog process (`NetnsLab.start_captures`, the lab's path)
against the reference in the same script, `timeout -s INT 600` exec-ed in front of each tcpdump
(what the lab did before, and still does where _spawn.c is not compiled). Alternated `--repeat`
times. Per round: wall time of the start and of the stop, and CPU (user + system of this process
and of every child it reaped: tcpdump, `timeout`, the watchdog). Needs root.

`--hold`: between the start and the stop, what a run's interpreter does to its memory while the
captures run (scapy imported beforehand, a full garbage collection and a few hundred thousand
objects made and dropped), timed with the rest. The watchdog is a fork(): while it lives, every
page vxcap writes for the first time is copied (the minor page faults are reported), which the
reference's vfork-ed `timeout`s do not cost.

    .venv/bin/python -m vxcap lab up --prefix vxwd --nodes 64 --subnets 8
    .venv/bin/python benchmarks/bench_lab_captures.py --prefix vxwd --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

from vxcap.adapters import netns, tcpdump
from vxcap.adapters.lab import CAPTURE_START_BATCH, NetnsLab
from vxcap.core.capture import DEFAULT_DURATION_S, DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN, lab_buffer_kib, tcpdump_argv
from vxcap.targets.lab import LabMemory


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def start_with_timeout(lab: NetnsLab, requests: list[tuple[str, Path, str]]) -> list:
    """The lab's start before the watchdog: `timeout -s INT 600` in each argv, batches of 32."""
    specs = [([], tcpdump_argv(lab.spec.underlay_iface, path, bpf, DEFAULT_SNAPLEN, DEFAULT_MAX_PACKETS,
                               duration=DEFAULT_DURATION_S, ring_kib=lab_buffer_kib(DEFAULT_SNAPLEN)),
              path, partial(netns.entered, lab.node_netns(node))) for node, path, bpf in requests]
    started: list = []
    for i in range(0, len(specs), CAPTURE_START_BATCH):
        started += tcpdump.start_many(specs[i:i + CAPTURE_START_BATCH])
    return started


def hold() -> None:
    gc.collect()
    junk = [{"n": i, "s": str(i)} for i in range(300_000)]
    del junk
    gc.collect()


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def one_round(lab: NetnsLab, nodes: list[str], how: str, out: Path, held: bool = False) -> dict:
    requests = [(node, out / f"{how}-{node}.pcap", f"host {lab.spec.topology.node(node).underlay.ip}") for node in nodes]
    cpu0, t0, faults0 = cpu(), time.perf_counter(), faults()
    started = start_with_timeout(lab, requests) if how == "timeout" else lab.start_captures(requests)
    if held:
        hold()
    t1 = time.perf_counter()
    failed = [c for c in started if isinstance(c, tcpdump.TcpdumpError)]
    outcomes = tcpdump.RunningCapture.stop_many([c for c in started if isinstance(c, tcpdump.RunningCapture)])
    t2, cpu1, faults1 = time.perf_counter(), cpu(), faults()
    assert not failed and all(err is None for _r, err in outcomes), (failed, outcomes)
    return {"start": t1 - t0, "stop": t2 - t1, "cpu": cpu1 - cpu0, "faults": faults1 - faults0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hold", action="store_true", help="work in the interpreter while the captures run")
    args = parser.parse_args()
    if args.hold:
        import scapy.all  # noqa: F401 - a run's heap has it (the spot-check, the probes)
    source = LabMemory(args.prefix).recall()
    if source is None:
        raise SystemExit(f"no lab under {args.prefix}: vxcap lab up --prefix {args.prefix} --nodes 64 --subnets 8")
    lab = NetnsLab(source.spec, prefix=args.prefix)
    nodes = list(source.spec.topology.node_names())
    if tcpdump._fork_watchdog is None:
        raise SystemExit("_spawn.c is not compiled: there is no watchdog to measure")
    rounds: dict[str, list[dict]] = {"timeout": [], "watchdog": []}
    with tempfile.TemporaryDirectory(prefix="vxcap-bench-captures-") as tmp:
        one_round(lab, nodes[:4], "watchdog", Path(tmp))  # warm-up: imports, page cache
        for i in range(args.repeat):
            for how in ("timeout", "watchdog") if i % 2 == 0 else ("watchdog", "timeout"):
                r = one_round(lab, nodes, how, Path(tmp), args.hold)
                rounds[how].append(r)
                print(f"{how:9} {len(nodes)} captures: start {r['start']:.3f} s, stop {r['stop']:.3f} s, "
                      f"CPU {r['cpu']:.3f} s ({1000 * r['cpu'] / len(nodes):.2f} ms per capture), "
                      f"{r['faults']} minor faults", flush=True)
    held = ", held" if args.hold else ""
    print(f"\n| {len(nodes)} lab captures{held} | start s | stop s | CPU s | CPU ms per capture | minor faults |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for how, runs in rounds.items():
        def span(key: str) -> str:
            values = [r[key] for r in runs]
            return f"{min(values):.3f}-{max(values):.3f} (median {statistics.median(values):.3f})"
        per = statistics.median(r["cpu"] for r in runs) * 1000 / len(nodes)
        print(f"| {how} | {span('start')} | {span('stop')} | {span('cpu')} | {per:.2f} | "
              f"{statistics.median(r['faults'] for r in runs):.0f} |")
    saved = statistics.median(r["cpu"] for r in rounds["timeout"]) - statistics.median(r["cpu"] for r in rounds["watchdog"])
    print(f"\nCPU saved by the watchdog, medians: {saved:.3f} s, {1000 * saved / len(nodes):.2f} ms per capture")


if __name__ == "__main__":
    main()
