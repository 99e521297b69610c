"""The spot-check's scapy worker (vxcap.stages.scapy_worker): the same answers as scapy in process,
a fallback to it when the worker cannot start or dies, and no process left behind."""

import os
import struct
from concurrent.futures import CancelledError

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from vxcap.adapters.pcapfile import RawFrame
from vxcap.stages import scapy_worker
from vxcap.stages.decode import DecoderDisagreement, decode_point
from vxcap.stages.scapy_worker import ScapyWorker, in_process


def frames() -> dict[int, RawFrame]:
    packets = [
        Ether() / IP(src="10.10.10.10", dst="10.10.20.13") / UDP(sport=40000, dport=4789) / VXLAN(vni=4096)
        / Ether() / IP(src="192.168.1.1", dst="192.168.3.1") / ICMP(seq=7),
        Ether() / IP(src="192.168.1.1", dst="192.168.2.1") / TCP(flags="S", options=[("MSS", 1410)]),
        Ether() / ARP(),
        Ether() / IP(src="10.10.10.10", dst="10.10.10.11", flags=1) / UDP(dport=53) / (b"x" * 30),
    ]
    return {i * 3 + 1: RawFrame(bytes(p), 1, len(bytes(p)) + i) for i, p in enumerate(packets)}


def test_the_worker_answers_as_scapy_in_process_does():
    with ScapyWorker() as worker:
        assert worker._proc is not None
        first = worker.dissect(frames())
        assert first == in_process(frames())
        assert first[1] is not None and first[7] is None  # a VXLAN echo is read, ARP is nothing
        assert worker.dissect({}) == {}
        assert worker.dissect(frames()) == first  # one worker serves every capture of a run
        pid = worker._proc.pid
    assert worker._proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped


def test_a_worker_that_cannot_start_or_dies_leaves_the_dissection_to_this_process(monkeypatch):
    def no_exec(*args, **kwargs):
        raise OSError("no exec here")

    with monkeypatch.context() as patch:
        patch.setattr(scapy_worker.subprocess, "Popen", no_exec)
        worker = ScapyWorker()
    assert worker._proc is None and worker.dissect(frames()) == in_process(frames())
    dying = ScapyWorker()
    dying._proc.kill()
    dying._proc.wait()
    assert dying.dissect(frames()) == in_process(frames())
    assert dying._proc is None


def test_closing_a_worker_still_importing_scapy_does_not_wait_for_it():
    worker = ScapyWorker()
    worker.close()  # at once: nothing to check
    assert worker._proc is None


def test_a_disagreement_found_through_the_worker_is_reported(tmp_path, monkeypatch):
    """The fast decoder made to lie about one frame's addresses: scapy, in the worker, says so."""
    packet = Ether() / IP(src="192.168.1.1", dst="192.168.3.1") / ICMP(seq=1)
    data = bytes(packet)
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    pcap += struct.pack("<IIII", 1, 0, len(data), len(data)) + data
    (tmp_path / "one.pcap").write_bytes(pcap)
    import vxcap.adapters.pcapfile as pcapfile

    real = pcapfile.read_flows

    def lying(*args, **kwargs):
        result = real(*args, **kwargs)
        ((key, flow),) = result.flows.items()
        swapped = (key[1], key[0])
        result.flows = {swapped: flow}
        result.sample_frames = {swapped: result.sample_frames[key]}
        return result

    monkeypatch.setattr(pcapfile, "read_flows", lying)
    with ScapyWorker() as worker:
        with pytest.raises(DecoderDisagreement, match="frame 1: scapy reads .*192.168.1.1"):
            decode_point(tmp_path / "one.pcap", [], 4789, None, worker.dissect)


def test_a_worker_that_ends_before_answering_leaves_the_dissection_to_this_process(monkeypatch):
    monkeypatch.setattr(scapy_worker, "_SERVE", "import sys; sys.exit(0)")  # as serve() does when scapy is missing
    worker = ScapyWorker()
    worker._proc.wait()
    assert worker.dissect(frames()) == in_process(frames())
    assert worker._proc is None


def test_submitted_frames_are_answered_in_order_as_dissect_answers_them():
    with ScapyWorker() as worker:
        futures = [worker.submit(frames()) for _ in range(3)] + [worker.submit({})]
        assert [f.result(timeout=30) for f in futures] == [in_process(frames())] * 3 + [{}]


def test_closing_with_frames_queued_ends_the_worker_and_settles_every_submission():
    """An interrupt during the decode: nothing waits on scapy, no process is left, and no submission
    is left pending (answered, or cancelled)."""
    worker = ScapyWorker()
    proc = worker._proc
    futures = [worker.submit(frames()) for _ in range(200)]
    worker.close()
    assert proc.poll() is not None
    assert all(f.done() for f in futures)

    def dropped(future):
        return future.cancelled() or isinstance(future.exception(), CancelledError)

    # answered by the worker, or dropped: none dissected in this process once closed
    assert all(dropped(f) or f.result() == in_process(frames()) for f in futures)
    assert dropped(futures[-1])  # the worker was still importing scapy: close did not wait for 200 batches
