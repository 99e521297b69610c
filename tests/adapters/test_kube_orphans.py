"""No orphaned captures: the fake keeps an exec'd process running when its client
leaves, as a kubelet does, so a capture vxcap abandons shows up as a live process.

Each "tcpdump" here is a small local program standing in for it (the fake's
ProcessRuntime runs exec'd commands as real processes): one that never says it
listens, one that ignores SIGINT, one that behaves.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.fakes.kube_api import ProcessRuntime, start_fake_kube  # noqa: F401 (fixture)
from vxcap.adapters.kube import KubeCluster, KubeError
from vxcap.adapters.kube import exec as kexec
from vxcap.targets.cluster import CAPTURE_DEADLINE_S, capture_deadline

PCAP_HEADER = "d4c3b2a1020004000000000000000000ffff000001000000"
SILENT = "import time\nwhile True: time.sleep(0.1)\n"
STUBBORN = f"""\
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.stdout.buffer.write(bytes.fromhex("{PCAP_HEADER}")); sys.stdout.flush()
print("listening on eth1, link-type EN10MB (Ethernet), snapshot length 256 bytes", file=sys.stderr, flush=True)
while True: time.sleep(0.1)
"""
WELL_BEHAVED = f"""\
import sys, time
sys.stdout.buffer.write(bytes.fromhex("{PCAP_HEADER}")); sys.stdout.flush()
print("listening on eth1, link-type EN10MB (Ethernet), snapshot length 256 bytes", file=sys.stderr, flush=True)
try:
    while True: time.sleep(0.1)
except KeyboardInterrupt:
    print("0 packets captured", file=sys.stderr, flush=True)
"""
NODE = "k01-worker"


def program(source: str):
    return lambda pod: [sys.executable, "-c", source]


@pytest.fixture
def capture_cluster(start_fake_kube):
    def make(source: str):
        runtime = ProcessRuntime(prefix=program(source))
        fake = start_fake_kube(runtime=runtime)
        kube = KubeCluster(str(fake.kubeconfig))
        pod = kube.create_capture_pods("r1", [NODE], timeout=30)[NODE]
        return kube, runtime, pod

    return make


def test_the_fake_leaves_a_disconnected_exec_running_as_a_kubelet_does(capture_cluster):
    kube, runtime, pod = capture_cluster(SILENT)
    started = kexec.open_exec(kube.conn, "vxcap", pod, ["tcpdump", "-i", "eth1"])
    pump = kexec.ExecPump(started.ws)
    pump.halt()
    started.close()
    # The fake starts the process on its own thread after the upgrade, as a kubelet does: under load
    # it may not have started yet when the client has already left. Wait for it, then see it stay.
    deadline = time.monotonic() + 10
    while not runtime.alive(pod) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert runtime.alive(pod) == [["tcpdump", "-i", "eth1"]]  # the leak this file guards against
    kube.delete_run("r1")
    assert runtime.alive(pod) == []  # deleting the pod ends it


def test_a_capture_that_never_listens_is_ended_not_abandoned(capture_cluster, tmp_path):
    kube, runtime, pod = capture_cluster(SILENT)
    with pytest.raises(KubeError) as err:
        kube.start_capture(NODE, out_path=tmp_path / "x.pcap", run_id="r1", listen_timeout=1.0)
    assert "was not listening after 1s" in str(err.value)
    assert runtime.alive(pod) == []


def test_a_tcpdump_that_ignores_sigint_is_killed_on_stop(capture_cluster, tmp_path):
    kube, runtime, pod = capture_cluster(STUBBORN)
    capture = kube.start_capture(NODE, out_path=tmp_path / "x.pcap", run_id="r1")
    result = capture.stop(timeout=1.0)
    assert result.killed
    assert runtime.alive(pod) == []


def test_an_exception_inside_the_capture_ends_tcpdump(capture_cluster, tmp_path):
    kube, runtime, pod = capture_cluster(WELL_BEHAVED)
    with pytest.raises(RuntimeError), kube.start_capture(NODE, out_path=tmp_path / "x.pcap", run_id="r1"):
        assert runtime.alive(pod)
        raise RuntimeError("the run failed while capturing")
    assert runtime.alive(pod) == []


def test_a_stopped_capture_leaves_nothing_running(capture_cluster, tmp_path):
    kube, runtime, pod = capture_cluster(WELL_BEHAVED)
    result = kube.start_capture(NODE, out_path=tmp_path / "x.pcap", run_id="r1").stop()
    assert not result.killed and result.exit_code == 0
    assert runtime.alive(pod) == []


def test_the_capture_bound_is_what_the_run_needs_and_never_more_than_the_ceiling():
    assert capture_deadline(2) == 140.0  # one pair: its two directions
    assert capture_deadline(4) < CAPTURE_DEADLINE_S
    assert capture_deadline(64) == CAPTURE_DEADLINE_S
