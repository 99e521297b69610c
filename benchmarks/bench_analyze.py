"""`vxcap analyze` end to end on both mixes, against a bare struct parser of the same file.

    .venv/bin/python benchmarks/bench_analyze.py                          # 100k and 1M frames, both mixes
    .venv/bin/python benchmarks/bench_analyze.py --counts 10000000 --mixes busy
    .venv/bin/python benchmarks/bench_analyze.py --counts 100000 1000000 --runs 3

Mixes (gen_mix.py): "quiet", the lab (the test pods' traffic and a little noise); "busy", a busy
node's underlay (450 other pods all-to-all, about 200,000 inner flows, with ARP, IPv6, IPv4
fragments and UDP look-alikes on 8472 and from port 4789; 2% of it the test pods' traffic).

Each measurement is a child process (interpreter start and imports included), timed from the
parent; peak RSS is the child's own VmHWM plus that of the spot-check's scapy worker (a process
of its own, read just before the child ends it): an upper bound of what both hold at once. `vxcap analyze` runs the whole command on a run
directory (manifest with the k01 test pods, one capture, evidence files when the capture is small
enough to get them by default). The reference is a bare parser in the same script: it walks the
records and unpacks the Ethernet + IPv4 header of each, reading the file in 8 MiB chunks, and
does nothing else. Speed is never asserted by the tests.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_mix  # noqa: E402

ANALYZE = """
import sys
import vxcap.stages.scapy_worker as worker
from vxcap.cli.main import cli

def hwm(pid="self"):
    return int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")).split()[1]) / 1024

worker_peaks = []
close = worker.ScapyWorker.close
def measured_close(self):  # the spot-check's scapy process: its peak, read before it is ended
    if self._proc is not None:
        try:
            worker_peaks.append(hwm(self._proc.pid))
        except (OSError, StopIteration):
            pass
    close(self)
worker.ScapyWorker.close = measured_close
try:
    cli(["analyze", sys.argv[1], "--json"], standalone_mode=False)
except SystemExit:
    pass
print(f"BENCH {hwm()} {max(worker_peaks, default=0.0)}", file=sys.stderr)
"""

BARE = """
import struct, sys
record = struct.Struct("<8xII").unpack_from
header = struct.Struct("!12xHBxHxxHxBxxQ").unpack_from  # ethertype, version/IHL, length, frag, proto, addresses
frames = ipv4 = 0
buf = bytearray(8 << 20)
view = memoryview(buf)
with open(sys.argv[1], "rb") as f:
    f.readinto(view[:24])
    left = 0
    while True:
        got = f.readinto(view[left:])
        n = left + got
        off = 0
        while off + 16 <= n:
            caplen, wire_len = record(buf, off)
            end = off + 16 + caplen
            if end > n:
                break
            if caplen >= 34:
                ethertype, vihl, length, frag, proto, pair = header(buf, off + 16)
                if ethertype == 0x0800:
                    ipv4 += 1
            frames += 1
            off = end
        left = n - off
        view[:left] = view[off:n]
        if not got:
            break
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(f"BENCH {int(hwm) / 1024}", file=sys.stderr)
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


# A user's vxcap has its modules compiled (.pyc), as pip installs it. These sessions' environment
# sets PYTHONDONTWRITEBYTECODE, with which every child compiled vxcap's sources again (0.1-0.2 s):
# the children run without it, after the package is compiled once (main).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def child(code: str, *args: str) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, peak RSS MB of its scapy worker if any) of a child process running `code`."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=CHILD_ENV)
    wall = time.perf_counter() - started
    line = next((l for l in proc.stderr.splitlines() if l.startswith("BENCH")), None)
    if line is None:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    fields = line.split()
    return wall, float(fields[1]), float(fields[2]) if len(fields) > 2 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--mixes", nargs="+", choices=("quiet", "busy"), default=["quiet", "busy"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the captures (default: a temp dir)")
    parser.add_argument("--runs", type=int, default=1, help="measurements of each file (default 1)")
    args = parser.parse_args()
    import vxcap

    compileall.compile_dir(Path(vxcap.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:  # warm-up: report.html's compiled template
        gen_mix.generate(1000, args.seed, Path(tmp) / "mix.pcap")
        (Path(tmp) / "manifest.json").write_text(json.dumps(manifest()))
        child(ANALYZE, tmp)
    print(f"{'mix':<6}{'frames':>12}  {'what':<22}{'frames/s':>12}{'seconds':>9}{'peak RSS':>11}", flush=True)
    for mix in args.mixes:
        for count in args.counts:
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                run = Path(tmp)
                size = gen_mix.generate(count, args.seed, run / "mix.pcap", mix=mix)
                (run / "manifest.json").write_text(json.dumps(manifest()))
                for _ in range(args.runs):
                    if (run / "evidence").exists():
                        shutil.rmtree(run / "evidence")  # each run writes it afresh, as the first did
                    bare_wall, bare_rss, _ = child(BARE, str(run / "mix.pcap"))
                    wall, main_rss, worker_rss = child(ANALYZE, str(run))
                    rss = main_rss + worker_rss  # both at their peaks at once: an upper bound
                    report = json.loads((run / "report.json").read_text())
                    for what, seconds, peak in (("bare struct parser", bare_wall, bare_rss),
                                                ("vxcap analyze", wall, rss)):
                        print(f"{mix:<6}{count:>12,}  {what:<22}{count / seconds:>12,.0f}{seconds:>9.2f}{peak:>8.1f} MB")
                    evidence = "written" if "all_nodes" in report.get("evidence", {}) else "skipped"
                    decode = report["timings"]["decode"]  # read, fast decode and the scapy spot-check
                    print(f"{mix:<6}{count:>12,}  {'  its decode stage':<22}{count / decode:>12,.0f}{decode:>9.2f}")
                    print(f"{'':<6}{'':>12}  analyze / bare: {wall / bare_wall:.2f}x the time, {rss / bare_rss:.2f}x "
                          f"the memory (vxcap {main_rss:.1f} MB + its scapy worker {worker_rss:.1f} MB); "
                          f"{size / 1e6:.0f} MB file, verdict {report['verdict']}, evidence {evidence}", flush=True)


if __name__ == "__main__":
    main()
