"""In-process ICMP echoes on the real lab, with iputils ping as the witness.

The pipeline probes the lab with `vxcap.adapters.echo`; each claim here is
checked against what `ping` says in the same situation and against the frames
tcpdump captured, read by the reference decoder.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address

import pytest

from tests.lab_support import lab_session_guard, lab_test, read_frames, running_lab  # noqa: F401
from vxcap.adapters.echo import EchoPlan, echo_all
from vxcap.adapters.netns import NetnsError
from vxcap.core.capture import bpf_filter
from vxcap.core.errors import InputError
from vxcap.core.model import Wire

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
NODES = (CP, W, W2, W3)


def ping_says(lab, src, dst_ip, size, dont_fragment=True):
    """iputils ping's view of one DF echo: the witness."""
    result, _ = lab.ping_output(src, dst_ip, count=1, size=size, dont_fragment=dont_fragment, timeout=1.0, interval=0.01)
    return result


def test_a_plan_with_no_echo_or_no_wait_is_an_input_error():
    with pytest.raises(InputError):
        EchoPlan("ns", IPv4Address("192.168.81.65"), count=0)
    with pytest.raises(InputError):
        EchoPlan("ns", IPv4Address("192.168.81.65"), timeout=0)


def test_more_plans_than_identifiers_is_an_input_error_before_anything_is_sent():
    plan = EchoPlan("no-such-namespace", IPv4Address("192.168.81.65"))
    with pytest.raises(InputError, match="at most 65536"):
        echo_all([plan] * 0x10001)


@lab_test
def test_every_direction_is_answered_and_its_echoes_cross_the_wire_as_the_path_wants(tmp_path):
    with running_lab() as lab:
        directions = [(s, d) for s in NODES for d in NODES if s != d]
        bpf = bpf_filter(lab.spec.topology.pool, [n.address for n in lab.spec.topology.nodes])
        with lab.start_capture(W, tmp_path / "w.pcap", bpf, snaplen=256, max_packets=1000) as cap:
            results = echo_all([EchoPlan(lab.pod_netns(s), lab.pod(d).ip, count=2, interval=0.05, size=300)
                                for s, d in directions])
            cap.stop()
        assert [(r.transmitted, r.received, r.local_errors) for r in results] == [(2, 2, 0)] * len(directions)
        assert all(ping_says(lab, s, lab.pod(d).ip, 300, dont_fragment=False).all_replied for s, d in directions)
        # Worker's own echoes, read back by the reference decoder: 300 + 8 + 20 bytes, plain or VXLAN by path.
        frames = read_frames(tmp_path / "w.pcap")
        sent = {(f.dst, f.encap, f.inner_len) for f in frames if f.src == lab.pod(W).ip}
        assert sent == {(lab.pod(CP).ip, Wire.PLAIN, 328), (lab.pod(W2).ip, Wire.PLAIN, 328),
                        (lab.pod(W3).ip, Wire.VXLAN, 328)}


@lab_test
def test_a_df_echo_too_big_for_the_pod_route_is_refused_with_its_mtu_as_ping_is(tmp_path):
    with running_lab() as lab:
        [fits, too_big] = echo_all([
            EchoPlan(lab.pod_netns(W), lab.pod(W3).ip, size=1422, dont_fragment=True),
            EchoPlan(lab.pod_netns(W), lab.pod(W3).ip, size=1423, dont_fragment=True),
        ])
        assert fits.received == 1 and not fits.refused_too_big
        assert (too_big.received, too_big.local_errors, too_big.refused_too_big, too_big.local_mtu) == (0, 1, True, 1450)
        witness = ping_says(lab, W, lab.pod(W3).ip, 1423)
        assert (witness.refused_too_big, witness.local_mtu) == (True, 1450)


def shrink_underlay(lab, node, mtu):
    """The node's eth1 below what its pod sends: the node becomes a hop that cannot forward."""
    subprocess.run(["ip", "-n", lab.names.node(node), "link", "set", "eth1", "mtu", str(mtu)], check=True)


@lab_test
def test_a_hop_that_cannot_forward_answers_fragmentation_needed_as_ping_hears_it():
    with running_lab() as lab:
        shrink_underlay(lab, W, 1400)  # worker -> worker2 is plain: the pod's 1450 must cross a 1400 eth1
        [frag] = echo_all([EchoPlan(lab.pod_netns(W), lab.pod(W2).ip, size=1422, dont_fragment=True)])
        assert (frag.received, frag.frag_needed_mtu, frag.refused_too_big) == (0, 1400, False)
        # The pod learnt the path MTU: the same echo is now refused before it leaves, with that MTU.
        [after] = echo_all([EchoPlan(lab.pod_netns(W), lab.pod(W2).ip, size=1422, dont_fragment=True)])
        assert (after.refused_too_big, after.local_mtu) == (True, 1400)
    with running_lab() as lab:  # iputils, on a fresh lab with the same fault
        shrink_underlay(lab, W, 1400)
        assert ping_says(lab, W, lab.pod(W2).ip, 1422).frag_needed_mtu == 1400


@lab_test
def test_a_missing_namespace_fails_its_own_plans_only():
    with running_lab() as lab:
        missing, fine = echo_all([
            EchoPlan(f"{lab.pod_netns(W)}-gone", lab.pod(W3).ip),
            EchoPlan(lab.pod_netns(W), lab.pod(W3).ip),
        ])
        assert isinstance(missing, NetnsError) and "Cannot open network namespace" in str(missing)
        assert fine.received == 1


@lab_test
def test_an_address_nobody_answers_waits_its_timeout_and_no_longer():
    with running_lab() as lab:
        nobody = IPv4Address(int(lab.pod(W3).ip) + 30)  # in worker3's block, no pod behind it
        started = time.monotonic()
        [silent] = echo_all([EchoPlan(lab.pod_netns(W), nobody, count=2, interval=0.1, timeout=0.4)])
        elapsed = time.monotonic() - started
        assert (silent.transmitted, silent.received) == (2, 0)
        assert 0.45 <= elapsed < 1.5


@lab_test
def test_concurrent_probers_from_one_pod_count_only_their_own_replies():
    with running_lab() as lab:
        plan = EchoPlan(lab.pod_netns(W), lab.pod(W3).ip, count=5, interval=0.02)
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = [r for [r] in pool.map(lambda _: echo_all([plan]), range(3))]
        assert [(r.transmitted, r.received) for r in results] == [(5, 5)] * 3


@lab_test
def test_a_full_queue_holds_echoes_back_and_sends_them_later_as_ping_does(monkeypatch):
    with running_lab() as lab:
        # A slow token bucket on the pod's eth0 with room for two full-size packets: a burst overflows it.
        subprocess.run(["ip", "netns", "exec", lab.pod_netns(W), "tc", "qdisc", "add", "dev", "eth0", "root",
                        "tbf", "rate", "2mbit", "burst", "3000", "limit", "3000"], check=True)
        plans = [EchoPlan(lab.pod_netns(W), lab.pod(dst).ip, size=1400) for dst in (CP, W2, W3)] * 8
        results = echo_all(plans)
        assert [(r.transmitted, r.received, r.local_errors) for r in results] == [(1, 1, 0)] * len(plans)

        # The twin: without waiting for room, the same burst is refused by the queue.
        monkeypatch.setattr("vxcap.adapters.echo.GIVE_UP_S", 0.0)
        refused = [r for r in echo_all(plans) if r.local_errors]
        assert refused and all("No buffer space available" in r.message and r.received == 0 for r in refused)
