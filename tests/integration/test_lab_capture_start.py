"""The lab's captures start inside the node namespaces from vxcap's own thread (no `ip netns exec`):
each captures its own node's underlay, and a namespace that is gone fails its capture alone.

Every lab here is named with this session's prefix (tests/lab_support.py).
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test, read_frames, running_lab  # noqa: F401
from vxcap.adapters import netns, tcpdump
from vxcap.core.model import Wire

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"


@lab_test
def test_each_capture_sees_its_own_node_and_a_missing_namespace_fails_alone(tmp_path):
    gone = f"{SESSION_PREFIX}-nosuch"
    with running_lab() as lab:
        started = lab.start_captures([(W, tmp_path / "w.pcap", "icmp or udp"), (W2, tmp_path / "w2.pcap", "icmp or udp"),
                                      (W3, tmp_path / "w3.pcap", "icmp or udp")])
        missing = tcpdump.start_many([([], ["tcpdump", "-i", "eth1"], tmp_path / "x.pcap", partial(netns.entered, gone))])
        try:
            result = lab.ping(W, lab.pod(W3).ip, count=2)
        finally:
            results = [capture.stop() for capture in started]
    assert result.received == 2
    assert isinstance(missing[0], tcpdump.TcpdumpError)
    assert str(missing[0]) == f'tcpdump could not be started there: Cannot open network namespace "{gone}": No such file or directory'
    # worker and worker3 each saw the echoes in VXLAN on their own underlay; worker2 is not on the path
    for capture, name in zip(results, ("w.pcap", "w2.pcap", "w3.pcap")):
        assert capture.dropped == 0, capture.stderr
    assert {f.encap for f in read_frames(tmp_path / "w.pcap")} == {Wire.VXLAN}
    assert {f.encap for f in read_frames(tmp_path / "w3.pcap")} == {Wire.VXLAN}
    assert read_frames(tmp_path / "w2.pcap") == []
