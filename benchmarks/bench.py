"""The one benchmark command: the decoder on a 1M-frame mix (vs scapy and tshark),
`vxcap analyze` on a quiet lab's and a busy node's mix (vs a bare struct parser), then time
to verdict on the lab (one pair vs all pairs on 16 nodes), and a coverage run on labs of 16, 64 and
256 nodes and a 1,000-node fake cluster (vs one pair). Needs root."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in ("bench_decode.py", "bench_analyze.py", "bench_run.py", "bench_coverage.py"):
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], check=True)
