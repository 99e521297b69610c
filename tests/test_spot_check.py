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


def test_a_disagreement_found_after_the_judge_takes_that_capture_out_and_judges_again(tmp_path, monkeypatch):
    """The run judges while scapy reads: when scapy then disagrees with the fast decoder on a frame of
    k01-worker3's capture, that capture vouches for nothing and the directions are judged again
    without it (the first judge had it usable); the directions it does not touch still pass."""
    from pathlib import Path

    import vxcap.adapters.pcapfile as pcapfile
    from tests.run_support import write_run
    from vxcap.pipeline import analyze

    run = write_run(tmp_path, healthy_frames())
    real = pcapfile.read_flows

    def lying_about_worker3(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        if Path(path).name.startswith(f"{W3}-"):  # each flow filed under the other's key
            result.flows = {(b, a): flow for (a, b), flow in result.flows.items()}
            result.sample_frames = {(b, a): frames for (a, b), frames in result.sample_frames.items()}
        return result

    monkeypatch.setattr(pcapfile, "read_flows", lying_about_worker3)
    report = analyze(run).report
    (entry,) = [c for c in report["captures"] if c["node"] == W3]
    assert entry["usable"] is False and "scapy reads" in entry["problem"], entry
    assert any("scapy reads" in e and e.startswith(f"{W3}-eth1.pcap: frame ") for e in report["errors"]), report["errors"]
    verdicts = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    for direction in ((W, W3), (W3, W)):
        assert verdicts[direction]["verdict"] == "fail"
        assert any(r.startswith(f"no usable capture of {W3}") and "scapy reads" in r
                   for r in verdicts[direction]["reasons"]), verdicts[direction]["reasons"]
    assert verdicts[(W, W2)]["verdict"] == verdicts[(W2, W)]["verdict"] == "pass"
    assert report["verdict"] == "fail"
    assert "spot-check" in report["timings"]


def test_without_the_lie_the_same_run_passes(tmp_path):
    """The twin: the same captures, read honestly, pass every direction with every capture usable."""
    from tests.run_support import write_run
    from vxcap.pipeline import analyze

    report = analyze(write_run(tmp_path, healthy_frames())).report
    assert report["verdict"] == "pass" and all(c["usable"] for c in report["captures"])
