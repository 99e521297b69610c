"""Helpers for tests that build the embedded network-namespace lab (root only).

    from tests.lab_support import lab_test, running_lab, read_frames

    @lab_test
    def test_something(tmp_path):
        with running_lab() as lab:
            ...

Every lab made here is named with this session's prefix (`vxt` + 4 random hex
digits), so parallel runs never meet each other's namespaces nor a user's lab,
and `running_lab` always takes its lab down, also when the test fails.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapReader, rdpcap

from vxcap.adapters.lab import NetnsLab
from vxcap.adapters.netns import list_netns
from vxcap.core.decode import decode_frame
from vxcap.core.frames import FrameFacts
from vxcap.core.lab.spec import LabSpec, lab_from_dict

REPO = Path(__file__).resolve().parents[1]
LAB_FILE = REPO / "topology" / "k01-lab.yaml"
SESSION_PREFIX = "vxt" + secrets.token_hex(2)

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the lab needs root (network namespaces, tcpdump)")


def lab_test(func):
    """Mark a test as a lab test: `-m lab` selects it, and it skips cleanly without root."""
    return pytest.mark.lab(needs_root(func))


def k01_spec() -> LabSpec:
    return lab_from_dict(yaml.safe_load(LAB_FILE.read_text()))


def session_namespaces(prefix: str = SESSION_PREFIX) -> set[str]:
    return {ns for ns in list_netns() if ns.startswith(prefix + "-")}


@contextmanager
def running_lab(
    prefix: str = SESSION_PREFIX, spec: LabSpec | None = None, adopt: dict[str, str] | None = None
) -> Iterator[NetnsLab]:
    """A healthy k01 lab (or `spec`'s), always taken down afterwards."""
    lab = NetnsLab(spec or k01_spec(), prefix=prefix, adopt=adopt)
    try:
        status = lab.up()
        assert status.healthy, status.to_dict()
        yield lab
    finally:
        lab.down()


def read_frames(path: Path) -> list[FrameFacts]:
    """Every frame of a pcap as the reference decoder sees it (frames of no interest dropped)."""
    facts = []
    with PcapReader(str(path)) as reader:
        linktype = reader.linktype
        for packet in reader:
            decoded = decode_frame(bytes(packet), linktype, getattr(packet, "wirelen", None))
            if decoded is not None:
                facts.append(decoded)
    return facts


@pytest.fixture(scope="session")
def lab_session_guard():
    """Use in lab test modules: fails the session if any of its namespaces outlive it."""
    yield SESSION_PREFIX
    if IS_ROOT:
        left = session_namespaces()
        for ns in sorted(left):
            subprocess.run(["ip", "netns", "delete", ns], check=False)
        assert not left, f"lab namespaces left behind: {sorted(left)}"


def vxcap_run(tmp_path, *pairs, lab_file=None, count=2, options=()):
    """`vxcap run --lab` on this session's lab through click's runner: (result, run_dir, report).
    `options`: more of `vxcap run`'s arguments."""
    import json as _json

    from click.testing import CliRunner

    from vxcap.cli.main import cli

    args = ["run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path), "--count", str(count)]
    if lab_file is not None:
        args += ["--lab-file", str(lab_file)]
    for pair in pairs:
        args += ["--pair", pair]
    args += list(options)
    result = CliRunner().invoke(cli, args)
    run_dirs = sorted(p for p in Path(tmp_path).iterdir() if p.is_dir())
    report = _json.loads((run_dirs[-1] / "report.json").read_text()) if run_dirs else None
    return result, (run_dirs[-1] if run_dirs else None), report


def flows(report):
    """report.json's flows by direction."""
    return {(f["src_node"], f["dst_node"]): f for f in report["flows"]}


def vxlan_packets(pcap: Path, src: str, dst: str) -> list:
    """The VXLAN packets of one pod flow, by scapy's own dissection (its 4789 binding)."""
    found = []
    for pkt in rdpcap(str(pcap)):
        if pkt.haslayer(VXLAN):
            inner = pkt[VXLAN].payload.getlayer(IP)
            if inner is not None and (inner.src, inner.dst) == (src, dst):
                found.append(pkt)
    return found


def assert_vxlan_both_ways(run_dir: Path, a: str, b: str, pod: dict, underlay: dict, vni: int = 4096, port: int = 4789) -> None:
    """Both nodes' pcaps hold a <-> b as VXLAN (port, VNI, the nodes' underlay addresses outside),
    read by scapy's own dissection, not vxcap's."""
    for node in (a, b):
        for src, dst in ((a, b), (b, a)):
            packets = vxlan_packets(run_dir / f"{node}-eth1.pcap", pod[src], pod[dst])
            assert len(packets) >= 2, (node, src, dst)
            for pkt in packets:
                assert pkt[UDP].dport == port and pkt[VXLAN].vni == vni
                assert (pkt[IP].src, pkt[IP].dst) == (underlay[src], underlay[dst])


def dataplane_spec(overlay: str) -> LabSpec:
    """The k01 lab made to build one of Calico's other data planes (`vxcap lab up --overlay`)."""
    from vxcap.core.lab.gen import with_overlay

    return lab_from_dict(with_overlay(yaml.safe_load(LAB_FILE.read_text()), overlay))


@contextmanager
def captured(lab: NetnsLab, node: str, path: Path, bpf: str = "ip or ip6") -> Iterator[Path]:
    """tcpdump on the node's eth1 for the block, the pcap's path once it has stopped."""
    capture = lab.start_capture(node, path, bpf)
    try:
        yield path
    finally:
        capture.stop()
