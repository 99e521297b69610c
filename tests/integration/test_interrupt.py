"""Ctrl-C and SIGTERM in the middle of a real run: a partial verdict, exit 130, nothing left."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test, session_namespaces  # noqa: F401
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")


def tcpdumps_writing_to(directory: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-a", "tcpdump"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(directory) in line]


@lab_test
@pytest.mark.parametrize("how", ["sigint-to-the-group", "sigterm-to-vxcap"])
def test_interrupted_run_keeps_what_it_captured_and_leaves_nothing(tmp_path, how):
    assert not session_namespaces()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vxcap", "run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path),
         "--pair", "worker,worker3", "--count", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "probe" in line:
            break
    assert "probe" in seen, seen
    time.sleep(1.0)  # a few echo requests on the wire
    if how == "sigint-to-the-group":  # what a terminal's Ctrl-C does
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, out + err
    assert "Traceback" not in err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["verdict"] == "fail"
    assert any(e.startswith("interrupted during probe") for e in report["errors"])
    # what was captured until then is judged: the echo requests already crossed, as VXLAN
    flows = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    assert flows[("k01-worker", "k01-worker3")]["observed"] == "vxlan"
    assert flows[("k01-worker", "k01-worker3")]["packets"] > 0
    assert not session_namespaces()
    assert not tcpdumps_writing_to(tmp_path)


@lab_test
@pytest.mark.parametrize("case", ["keep", "lab-was-there"])
def test_after_ctrl_c_the_run_says_what_it_kept_or_left(tmp_path, case):
    from tests.lab_support import running_lab

    def interrupted_run(*extra):
        proc = subprocess.Popen(
            [sys.executable, "-m", "vxcap", "run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path),
             "--pair", "worker,worker3", "--count", "100", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        while "probe" not in proc.stderr.readline():
            assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == ExitStatus.INTERRUPTED, out + err
        return err.strip().splitlines()[-1]

    if case == "keep":
        try:
            last = interrupted_run("--keep")
            assert last == ("error: interrupted: what was captured until then is judged above; the lab the run "
                            "built is kept (--keep); `vxcap lab down` removes it")
            assert session_namespaces()  # kept, as it says
        finally:
            subprocess.run([sys.executable, "-m", "vxcap", "lab", "down", "--prefix", SESSION_PREFIX], check=True,
                           capture_output=True)
    else:
        with running_lab():
            last = interrupted_run()
            assert last.endswith("the lab was there before the run and is left as it was")
            assert session_namespaces()
    assert not session_namespaces()
