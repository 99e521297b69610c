"""One timed `vxcap run --lab --json` process, shared by the run and coverage benchmarks:
the wall time, and the split from report.json's own stage timings."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SPLIT = {
    "set-up": ("discover", "plan", "provision"),
    "capture": ("capture",),
    "probe": ("probe", "mtu-probe"),
    "stop": ("stop",),
    "tables": ("tables",),
    "decode": ("decode", "judge", "spot-check"),
    "report": ("report", "evidence", "cross-check"),
}


def vxcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vxcap", *args], capture_output=True, text=True)


def timed_run(prefix: str, out: Path, *selection: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = vxcap("run", "--lab", "--prefix", prefix, "--out", str(out), "--json", *selection)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # user + system of the run and every process it reaped (tcpdumps, ip, scapy's worker): on a
    # shared machine less noisy than the wall time, and what two cores must spend whatever the load
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"vxcap run failed ({proc.returncode}): {proc.stderr.strip()}")
    report = json.loads(proc.stdout)
    run_dir = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    timings = report.get("timings", {})
    return {
        "wall": wall,
        "cpu": cpu,
        "verdict": report["verdict"],
        "directions": len(report["flows"]),
        "captures": len(list(run_dir.glob("*.pcap"))),
        "split": {name: sum(timings.get(s, 0.0) for s in stages) for name, stages in SPLIT.items()},
    }
