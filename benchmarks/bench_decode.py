"""Time vxcap's fast decoder against scapy's full dissection and tshark, on the generated mix.

    .venv/bin/python benchmarks/bench_decode.py                 # 100k and 1M frames
    .venv/bin/python benchmarks/bench_decode.py --counts 200000 --scapy-slice 2000 --no-tshark --format pcapng

Each decoder runs in its own child process, so its peak RSS (VmHWM, the child's
own high-water mark; rusage would also count the parent's RSS at exec) is its own. Frames/s is counted over the decode itself; "end to end" adds the
child's interpreter start and imports, as `vxcap analyze` pays them. scapy
decodes the first --scapy-slice frames and is extrapolated (it would take
minutes per million).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

TSHARK_FIELDS = ["frame.len", "ip.src", "ip.dst", "ip.flags.mf", "ip.frag_offset", "udp.dstport", "vxlan.vni",
                 "eth.dst"]


def _peak_rss_mb(pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _child_fast(path: str) -> dict:
    from vxcap.adapters.pcapfile import read_flows

    start = time.perf_counter()
    result = read_flows(path)
    seconds = time.perf_counter() - start
    return {"frames": result.frames, "seconds": seconds, "flows": len(result.flows),
            "tallied": result.ipv4_frames, "rss": _peak_rss_mb()}


def _child_scapy(path: str, limit: int) -> dict:
    from vxcap.adapters.pcapfile import iter_frames
    from vxcap.core.decode import decode_frame
    from vxcap.core.frames import tally

    start = time.perf_counter()
    facts = []
    for index, frame in enumerate(iter_frames(path)):
        if index >= limit:
            break
        facts.append(decode_frame(frame.data, frame.linktype, frame.wire_len))
    flows = tally(facts)
    seconds = time.perf_counter() - start
    return {"frames": len(facts), "seconds": seconds, "flows": len(flows), "rss": _peak_rss_mb()}


def _python_child(*args: str) -> tuple[dict, float]:
    """Run this script as a child decoder: its report and wall seconds (start to exit)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                          stdout=subprocess.PIPE, check=True)
    wall = time.perf_counter() - start
    return json.loads(done.stdout.decode().strip().splitlines()[-1]), wall


def _tshark(path: Path) -> tuple[float, float, int]:
    """tshark's wall seconds, peak RSS (sampled from /proc while it runs) and output lines."""
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields"]
    for name in TSHARK_FIELDS:
        argv += ["-e", name]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0.0
    lines = 0
    os.set_blocking(proc.stdout.fileno(), False)
    while True:
        chunk = proc.stdout.read(1 << 20)
        if chunk:
            lines += chunk.count(b"\n")
        elif chunk == b"" and proc.poll() is not None:
            break
        else:
            time.sleep(0.01)
        peak = max(peak, _peak_rss_mb(proc.pid) or 0.0)
    proc.stdout.close()
    return time.perf_counter() - start, peak, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--scapy-slice", type=int, default=5_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--no-tshark", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated captures")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, path, *rest = args.child
        report = _child_fast(path) if kind == "fast" else _child_scapy(path, int(rest[0]))
        print(json.dumps(report))
        return

    tshark = None if args.no_tshark else shutil.which("tshark")
    rows = []
    print(f"{'frames':>9}  {'decoder':<34} {'frames/s':>11} {'seconds':>8} {'peak RSS':>9}")
    for count in args.counts:
        path = args.workdir / f"vxcap-bench-{count}-{args.seed}.{args.format}"
        # generated in a child too, so this process stays small
        subprocess.run([sys.executable, str(HERE / "gen_mix.py"), "--count", str(count), "--seed", str(args.seed),
                        "--path", str(path), "--format", args.format], check=True, stdout=subprocess.DEVNULL)
        size = path.stat().st_size
        try:
            fast, fast_wall = _python_child("fast", str(path))
            fast_rss = fast["rss"]
            assert fast["frames"] == count, fast
            fast_rate = count / fast["seconds"]
            rows.append((count, "vxcap fast (read_flows)", fast_rate, fast["seconds"], fast_rss))
            rows.append((count, "vxcap fast, end to end (process)", count / fast_wall, fast_wall, fast_rss))
            limit = min(args.scapy_slice, count)
            slow, _ = _python_child("scapy", str(path), str(limit))
            slow_rss = slow["rss"]
            slow_rate = slow["frames"] / slow["seconds"]
            rows.append((count, f"scapy dissection ({limit} extrapolated)", slow_rate, count / slow_rate, slow_rss))
            if tshark:
                wall, rss, lines = _tshark(path)
                assert lines == count, lines
                tshark_rate = count / wall
                rows.append((count, "tshark -T fields", tshark_rate, wall, rss))
            for row in rows[-(4 if tshark else 3):]:
                print(f"{row[0]:>9,}  {row[1]:<34} {row[2]:>11,.0f} {row[3]:>8.2f} {row[4]:>7.1f}MB")
            ratios = f"fast/scapy {fast_rate / slow_rate:,.0f}x"
            if tshark:
                ratios += f", fast/tshark {fast_rate / tshark_rate:.1f}x"
            print(f"{'':>9}  capture {size / 1e6:.0f} MB, {fast['flows']} flows, "
                  f"{fast['tallied']:,} IPv4 frames tallied; {ratios}")
        finally:
            if not args.keep:
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
