"""`vxcap analyze` end to end on the 1M-frame mix: the whole command in a child
process (start-up, manifest, fast decode, scapy's evidence re-read, verdicts,
report), against the bare fast decoder in the same script as the reference."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_mix  # noqa: E402

CHILD = """
import sys, time
from vxcap.cli.main import cli
started = time.perf_counter()
try:
    cli(["analyze", sys.argv[1], "--json"], standalone_mode=False)
except SystemExit:
    pass
elapsed = time.perf_counter() - started
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(f"BENCH {elapsed} {int(hwm) / 1024}", file=sys.stderr)
"""

DECODE_ONLY = """
import sys, time
from vxcap.adapters.pcapfile import read_flows
started = time.perf_counter()
read_flows(sys.argv[1])
elapsed = time.perf_counter() - started
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(f"BENCH {elapsed} {int(hwm) / 1024}", file=sys.stderr)
"""


def manifest() -> dict:
    nodes = {"k01-control-plane": ("control-plane", "10.10.10.10/24"), "k01-worker": ("worker", "10.10.10.11/24"),
             "k01-worker2": ("worker2", "10.10.10.12/24"), "k01-worker3": ("worker3", "10.10.20.13/24")}
    names = list(nodes)
    return {
        "version": 1,
        "overlay": {"encapsulation": "vxlan", "mode": "CrossSubnet", "vni": 4096, "port": 4789, "mtu": 1450},
        "nodes": [
            {"name": n, "underlay": addr, "vtep_mac": gen_mix.VTEP_MAC[short],
             "captures": [{"iface": "eth1", "file": "mix.pcap"}] if n == "k01-worker" else []}
            for n, (short, addr) in nodes.items()
        ],
        "pods": [{"name": f"p-{short}", "node": n, "ip": gen_mix.POD[short]} for n, (short, _) in nodes.items()],
        "pairs": [{"src": a, "dst": b} for i, a in enumerate(names) for b in names[i + 1:]],
    }


def child(code: str, *args: str) -> tuple[float, float, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    line = next(l for l in proc.stderr.splitlines() if l.startswith("BENCH"))
    _, inner, rss = line.split()
    return wall, float(inner), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{'frames':>10}  {'what':<28}{'frames/s':>12}{'seconds':>9}{'peak RSS':>11}")
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp)
            gen_mix.generate(count, args.seed, run / "mix.pcap")
            (run / "manifest.json").write_text(json.dumps(manifest()))
            ref_wall, _, ref_rss = child(DECODE_ONLY, str(run / "mix.pcap"))
            wall, _, rss = child(CHILD, str(run))
            for what, seconds, peak in (("fast decoder alone (process)", ref_wall, ref_rss),
                                        ("vxcap analyze (process)", wall, rss)):
                print(f"{count:>10,}  {what:<28}{count / seconds:>12,.0f}{seconds:>9.2f}{peak:>9.1f} MB")
            print(f"{'':>10}  analyze / decoder alone: {wall / ref_wall:.2f}x the time, {rss / ref_rss:.2f}x the memory")


if __name__ == "__main__":
    main()
