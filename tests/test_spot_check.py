"""The spot-check's budget across a run's captures (stages.spot_check): small runs re-read every
sample frame; past the allowance every flow is still re-read once per way it was filed, and every
capture at least once, so scapy still catches the fast decoder filing a frame wrongly."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from scapy.utils import wrpcap

from tests.run_support import POD, W, W2, W3, healthy_frames, pings, plain, vx
from vxcap.adapters.pcapfile import read_flows
from vxcap.core.frames import Wire
from vxcap.stages.decode import DecoderDisagreement, decode_point
from vxcap.stages.spot_check import SpotCheck


def key(a, b):
    return (IPv4Address(POD[a]), IPv4Address(POD[b]))


def write(tmp_path, frames):
    paths = {}
    for node, node_frames in frames.items():
        paths[node] = tmp_path / f"{node}-eth1.pcap"
        wrpcap(str(paths[node]), node_frames)
    return paths


def test_a_small_run_re_reads_every_sample_frame(tmp_path):
    spot = SpotCheck()
    for path in write(tmp_path, healthy_frames()).values():
        decode_point(path, [], spot_check=spot)
    assert spot.frames == spot.offered == 3 * (4 + 2 + 2)  # three per flow per capture
    assert spot.summary()["flows"] == 4


def test_past_the_allowance_each_flow_once_and_each_capture_at_least_once(tmp_path):
    spot = SpotCheck(full=0)
    paths = write(tmp_path, healthy_frames())
    for node in (W, W3, W2):
        decode_point(paths[node], [], spot_check=spot)
    # k01-worker holds all four flows; the other two captures hold only flows it already checked
    # the same way, and still get one frame each.
    assert spot.per_capture == {paths[W].name: 4, paths[W3].name: 1, paths[W2].name: 1}
    assert spot.frames == 6 and spot.offered == 24 and spot.summary()["flows"] == 4


def test_a_flow_filed_another_way_in_another_capture_is_re_read_there(tmp_path):
    # k01-worker3's capture holds the request flow unencapsulated (say, a node that lost its VXLAN
    # route): the same flow under another encapsulation is checked again, the reply flow is not.
    paths = write(tmp_path, {W: pings(vx, W, W3), W3: plain(W, W3) + vx(W3, W, reply=True)})
    spot = SpotCheck(full=0)
    first = read_flows(paths[W])
    assert set(spot.choose(paths[W].name, first.flows, first.sample_frames).values()) == {key(W, W3), key(W3, W)}
    second = read_flows(paths[W3])
    assert set(second.flows[key(W, W3)].encaps) == {Wire.PLAIN}
    chosen = spot.choose(paths[W3].name, second.flows, second.sample_frames)
    assert list(chosen.values()) == [key(W, W3)]


def test_a_wrong_filing_is_still_caught_in_a_capture_whose_flows_were_all_checked(tmp_path, monkeypatch):
    paths = write(tmp_path, healthy_frames())
    spot = SpotCheck(full=0)
    decode_point(paths[W], [], spot_check=spot)
    # From here on scapy reads every frame as something the fast decoder did not file it under.
    monkeypatch.setattr("vxcap.core.decode.decode_frame", lambda *args: None)
    with pytest.raises(DecoderDisagreement, match=f"^{paths[W2].name}: frame 1: scapy reads None"):
        decode_point(paths[W2], [], spot_check=spot)
