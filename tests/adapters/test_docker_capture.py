"""The Docker capture backend against the real engine: what it asks Docker for,
what comes back in the pcap, and that nothing is left behind, also on errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path

import docker.errors
import pytest
from scapy.layers.inet import ICMP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapReader

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `tests.*` helpers

from tests.docker_support import (  # noqa: E402
    assert_nothing_left,
    capture_image,  # noqa: F401 (fixture)
    container_pid,
    docker_engine,  # noqa: F401 (fixture)
    docker_nodes,  # noqa: F401 (fixture)
    exec_ok,
    image_without_tcpdump,
    netns_inode,
    tcpdump_pids,
    unique,
)
from tests.lab_support import k01_spec, lab_test, read_frames  # noqa: E402
from vxcap.adapters.docker_capture import (  # noqa: E402
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RUN_ID_LABEL,
    DURATION_EXPIRED_EXIT,
    CaptureImageMissing,
    DockerCaptureFailed,
    DockerCaptures,
    DockerUnavailable,
    NodeContainerMissing,
    PCAP_IN_CONTAINER,
    TcpdumpMissing,
    capture_command,
    label_filters,
)
from vxcap.core.errors import InputError  # noqa: E402
from vxcap.adapters.lab import NetnsLab  # noqa: E402
from vxcap.adapters.netns import list_netns  # noqa: E402
from vxcap.core.capture import DEFAULT_MAX_BYTES, bpf_filter  # noqa: E402
from vxcap.core.decode import decode_frame  # noqa: E402
from vxcap.core.model import Wire  # noqa: E402

# A node's eth1 is one end of a veth pair inside its own namespace; a
# permanent neighbour entry lets ping put frames on it with nobody answering.
NODE_IP, PEER_IP, PEER_MAC = "10.99.0.1", "10.99.0.2", "02:00:00:00:00:02"


def wire_eth1(node) -> None:
    exec_ok(node, ["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"])
    exec_ok(node, ["ip", "link", "set", "eth1", "up"])
    exec_ok(node, ["ip", "link", "set", "eth1p", "up"])
    exec_ok(node, ["ip", "addr", "add", f"{NODE_IP}/24", "dev", "eth1"])
    exec_ok(node, ["ip", "neigh", "add", PEER_IP, "lladdr", PEER_MAC, "dev", "eth1", "nud", "permanent"])


def ping_out(node, count: int) -> None:
    # Nobody answers, so ping exits 1; only the requests on the wire matter.
    node.exec_run(["ping", "-c", str(count), "-i", "0.2", "-W", "1", PEER_IP])


def pcap_frames(path: Path) -> list[bytes]:
    return [bytes(data) for data, _meta in RawPcapReader(str(path))]


@pytest.fixture
def captures(docker_engine, capture_image):
    backend = DockerCaptures(client=docker_engine, image=capture_image, run_id=f"vxdtest-{uuid.uuid4().hex[:8]}")
    yield backend
    backend.cleanup(backend.run_id)


@pytest.fixture
def node(docker_nodes):
    container = docker_nodes()
    wire_eth1(container)
    return container


# --- argv and labels as data ----------------------------------------------------------


def test_capture_command_runs_tcpdump_as_pid_1_into_the_helper_layer():
    argv = capture_command("eth1", "udp port 4789", 256, 50, None)
    assert argv[0] == "tcpdump"
    assert argv[argv.index("-i") + 1] == "eth1"
    assert argv[argv.index("-w") + 1] == PCAP_IN_CONTAINER
    assert argv[-1] == "udp port 4789"


def test_capture_command_with_a_duration_ends_tcpdump_with_sigint():
    argv = capture_command("eth1", "", 256, 50, 2.5)
    assert argv[:4] == ["timeout", "-s", "INT", "2.5"]
    assert argv[4] == "tcpdump"
    with pytest.raises(InputError):
        capture_command("eth1", "", 256, 50, 0)


def test_capture_command_is_bounded_in_packets_and_bytes():
    argv = capture_command("eth1", "", 65535, 10**6, None)
    count = int(argv[argv.index("-c") + 1])
    assert 0 < count < 10**6  # lowered to the size cap: 65535-byte records cannot all fit
    assert 24 + count * (16 + 65535) <= DEFAULT_MAX_BYTES


@pytest.mark.parametrize("name", ["../k01-worker", "k01 worker", "-k01-worker"])
def test_a_node_container_name_docker_would_refuse_is_refused_before_the_engine_is_asked(name):
    backend = DockerCaptures(base_url="unix:///nonexistent/docker.sock")  # never contacted
    for call in (lambda: backend.start_capture(name, "eth1"), lambda: backend.node_tables(name),
                 lambda: backend.node_container_running(name)):
        with pytest.raises(InputError, match=rf"^node container name {re.escape(repr(name))} is not valid"):
            call()


def test_an_interface_name_the_kernel_would_refuse_makes_no_container(docker_engine, captures, node):
    with pytest.raises(InputError, match="^capture interface 'eth1 -w /x' is not valid"):
        captures.start_capture(node.name, "eth1 -w /x")
    assert_nothing_left(docker_engine, captures.run_id)


def test_label_filters():
    assert label_filters(None) == [f"{MANAGED_BY_LABEL}=vxcap"]
    assert label_filters("r1") == [f"{MANAGED_BY_LABEL}=vxcap", f"{RUN_ID_LABEL}=r1"]


# --- what the engine was asked for -----------------------------------------------------


def test_capture_container_as_the_engine_sees_it(docker_engine, captures, node, tmp_path):
    with captures.start_capture(node.name, "eth1", "icmp", out_path=tmp_path / "x.pcap") as running:
        info = docker_engine.api.inspect_container(running.container_id)
        host = info["HostConfig"]
        assert info["State"]["Running"] is True
        assert host["NetworkMode"] == f"container:{node.id}"
        assert sorted(host["CapAdd"]) == ["NET_ADMIN", "NET_RAW"]
        assert host["CapDrop"] == ["ALL"] and info["Config"]["User"] == "65534:65534"
        assert host["Privileged"] is False
        assert not host.get("Binds")
        assert info["Mounts"] == []
        assert host["PidMode"] in ("", None)
        assert info["Config"]["Labels"][MANAGED_BY_LABEL] == MANAGED_BY
        assert info["Config"]["Labels"][RUN_ID_LABEL] == captures.run_id
        # tcpdump runs in the node's network namespace, not a namespace of its own.
        pid = int(info["State"]["Pid"])
        assert netns_inode(pid) == netns_inode(container_pid(node))
        assert tcpdump_pids([running.container_id]) == [pid]
        container_id = running.container_id
    assert_nothing_left(docker_engine, captures.run_id, [container_id])


def test_capture_returns_the_frames_sent_on_the_node_eth1(docker_engine, captures, node, tmp_path):
    with captures.start_capture(node.name, "eth1", "icmp", out_path=tmp_path / "eth1.pcap") as running:
        ping_out(node, 3)
    result = running.result
    assert result.path == tmp_path / "eth1.pcap"
    frames = pcap_frames(result.path)
    assert len(frames) == 3 == result.captured
    assert result.dropped == 0
    assert result.exit_code == 0 and not result.killed
    for seq, frame in enumerate(frames, start=1):
        eth = Ether(frame)
        assert eth.dst == PEER_MAC
        facts = decode_frame(frame)
        assert facts.encap is Wire.PLAIN
        assert (facts.src, facts.dst) == (IPv4Address(NODE_IP), IPv4Address(PEER_IP))
        assert facts.ip_proto == 1 and eth[ICMP].type == 8 and eth[ICMP].seq == seq
    assert_nothing_left(docker_engine, captures.run_id)


def test_max_packets_ends_the_capture_by_itself(docker_engine, captures, node, tmp_path):
    running = captures.start_capture(node.name, "eth1", "icmp", max_packets=2, out_path=tmp_path / "two.pcap")
    ping_out(node, 4)
    assert running.wait(10)
    result = running.stop()
    assert len(pcap_frames(result.path)) == 2 == result.captured
    assert_nothing_left(docker_engine, captures.run_id, [running.container_id])


def test_duration_ends_the_capture_with_sigint(docker_engine, captures, node, tmp_path):
    started = time.monotonic()
    running = captures.start_capture(node.name, "eth1", "icmp", duration=1.5, out_path=tmp_path / "timed.pcap")
    ping_out(node, 2)
    assert running.wait(10)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 10
    result = running.stop()
    assert result.exit_code == DURATION_EXPIRED_EXIT
    # Stats are printed only on a clean SIGINT exit, so their presence proves it.
    assert result.captured == len(pcap_frames(result.path)) == 2
    assert_nothing_left(docker_engine, captures.run_id, [running.container_id])


def test_context_manager_removes_the_container_on_an_exception(docker_engine, captures, node):
    with pytest.raises(RuntimeError, match="boom"):
        with captures.start_capture(node.name, "eth1") as running:
            container_id = running.container_id
            assert tcpdump_pids([container_id])
            raise RuntimeError("boom")
    with pytest.raises(docker.errors.NotFound):
        docker_engine.containers.get(container_id)
    assert_nothing_left(docker_engine, captures.run_id, [container_id])


def test_cleanup_removes_what_an_interrupted_run_left(docker_engine, captures, node):
    running = captures.start_capture(node.name, "eth1")
    container_id = running.container_id  # never stopped: as if the process had died
    assert captures.cleanup(captures.run_id) == [running.container_name]
    assert_nothing_left(docker_engine, captures.run_id, [container_id])
    docker_engine.containers.get(node.id)  # the node itself is not ours to remove


def test_node_container_running(captures, docker_nodes):
    node = docker_nodes()
    assert captures.node_container_running(node.name)
    node.stop(timeout=1)
    assert not captures.node_container_running(node.name)
    assert not captures.node_container_running(unique())


def test_evidence_reads_the_node_network_namespace(docker_engine, captures, node):
    files = captures.node_tables(node.name)
    assert sorted(files) == ["fdb.json", "link.json", "neigh.json", "route.json"]
    links = {link["ifname"]: link for link in json.loads(files["link.json"])}
    assert links["eth1"]["linkinfo"]["info_kind"] == "veth"
    assert any(r["dst"] == "10.99.0.0/24" and r["dev"] == "eth1" for r in json.loads(files["route.json"]))
    assert {"dst": PEER_IP, "dev": "eth1", "lladdr": PEER_MAC}.items() <= next(
        n for n in json.loads(files["neigh.json"]) if n["dst"] == PEER_IP
    ).items()
    assert isinstance(json.loads(files["fdb.json"]), list)
    assert_nothing_left(docker_engine, captures.run_id)


# --- error paths -----------------------------------------------------------------------


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def test_unreachable_engine_is_one_line():
    socket = f"unix:///nonexistent/{uuid.uuid4().hex}/docker.sock"
    backend = DockerCaptures(base_url=socket)
    assert backend.node_container_running("k01-worker") is False
    for attempt in (lambda: backend.start_capture("k01-worker", "eth1"), lambda: backend.node_tables("k01-worker"), backend.ping):
        with pytest.raises(DockerUnavailable) as err:
            attempt()
        assert one_line(err) == f"Docker is not reachable at {socket}: start dockerd or use --capture pod"


def test_missing_node_container(docker_engine, captures):
    absent = unique()
    with pytest.raises(NodeContainerMissing) as err:
        captures.start_capture(absent, "eth1")
    assert absent in one_line(err)
    with pytest.raises(NodeContainerMissing):
        captures.node_tables(absent)
    assert_nothing_left(docker_engine, captures.run_id)


def test_stopped_node_container(docker_engine, captures, docker_nodes):
    node = docker_nodes()
    node.stop(timeout=1)
    with pytest.raises(NodeContainerMissing) as err:
        captures.start_capture(node.name, "eth1")
    assert "exited" in one_line(err)
    assert_nothing_left(docker_engine, captures.run_id)


def test_missing_capture_image(docker_engine, node):
    image = f"vxd-test/absent:{uuid.uuid4().hex[:8]}"
    backend = DockerCaptures(client=docker_engine, image=image, run_id=f"vxdtest-{uuid.uuid4().hex[:8]}")
    with pytest.raises(CaptureImageMissing) as err:
        backend.start_capture(node.name, "eth1")
    assert image in one_line(err) and "build-capture-image" in one_line(err)
    assert_nothing_left(docker_engine, backend.run_id)


@pytest.fixture
def no_tcpdump_image(docker_engine, capture_image):
    tag = image_without_tcpdump(docker_engine, capture_image, f"vxd-test/no-tcpdump:{uuid.uuid4().hex[:8]}")
    yield tag
    docker_engine.images.remove(tag, force=True)


@pytest.mark.parametrize("duration", [None, 5.0], ids=["tcpdump-as-pid1", "under-timeout"])
def test_image_without_tcpdump(docker_engine, node, no_tcpdump_image, duration):
    backend = DockerCaptures(client=docker_engine, image=no_tcpdump_image, run_id=f"vxdtest-{uuid.uuid4().hex[:8]}")
    with pytest.raises(TcpdumpMissing) as err:
        backend.start_capture(node.name, "eth1", duration=duration)
    assert no_tcpdump_image in one_line(err)
    assert_nothing_left(docker_engine, backend.run_id)


def test_tcpdump_failing_to_open_the_interface(docker_engine, captures, node):
    with pytest.raises(DockerCaptureFailed) as err:
        captures.start_capture(node.name, "eth9")
    assert "eth9" in one_line(err) and "exited" in one_line(err)
    assert_nothing_left(docker_engine, captures.run_id)


# --- Kind-like node containers wired into the lab ---------------------------------------

W, W3 = "k01-worker", "k01-worker3"
UNDERLAY = {W: IPv4Address("10.10.10.11"), W3: IPv4Address("10.10.20.13")}
POD = {W: IPv4Address("192.168.81.65"), W3: IPv4Address("192.168.209.65")}
VNI, VXLAN_PORT = 4096, 4789


@contextmanager
def lab_on_containers(nodes: dict[str, object]):
    """The k01 lab with `nodes` (node name -> container) as its nodes, as Kind's would be.

    Each container's network namespace gets a name with `ip netns attach`, and
    the lab adopts it: eth1, vxlan.calico, routes and FDB go into the container.
    """
    prefix = unique("vxd").replace("-", "")
    adopt = {name: f"{prefix}-ctr-{name}" for name in nodes}
    for name, container in nodes.items():
        subprocess.run(["ip", "netns", "attach", adopt[name], str(container_pid(container))], check=True, capture_output=True)
    lab = NetnsLab(k01_spec(), prefix=prefix, adopt=adopt)
    try:
        status = lab.up()
        assert status.healthy, status.to_dict()
        yield lab
    finally:
        lab.down(detach_adopted=True)
        left = [ns for ns in list_netns() if ns.startswith(prefix + "-")]
        for ns in left:
            subprocess.run(["ip", "netns", "delete", ns], check=False)
        assert left == []


@lab_test
def test_vxlan_between_kind_like_containers_comes_back_through_docker(docker_engine, captures, docker_nodes, tmp_path):
    containers = {node: docker_nodes(unique("vxd") + "-" + node) for node in (W, W3)}
    bpf = bpf_filter(k01_spec().topology.pool, list(UNDERLAY.values()))
    with lab_on_containers(containers) as lab:
        with (
            captures.start_capture(containers[W].name, "eth1", bpf, snaplen=256, out_path=tmp_path / "w.pcap") as cap_w,
            captures.start_capture(containers[W3].name, "eth1", bpf, snaplen=256, out_path=tmp_path / "w3.pcap") as cap_w3,
        ):
            ping = lab.ping(W, POD[W3], count=3)
    assert ping.all_replied, ping.message
    for result in (cap_w.result, cap_w3.result):
        assert result.dropped == 0 and not result.killed
        frames = read_frames(result.path)
        assert result.captured >= len(frames)
        pod_frames = [f for f in frames if {f.src, f.dst} == {POD[W], POD[W3]}]
        requests_ = [f for f in pod_frames if (f.src, f.dst) == (POD[W], POD[W3])]
        replies = [f for f in pod_frames if (f.src, f.dst) == (POD[W3], POD[W])]
        assert len(requests_) == 3 and len(replies) == 3, result.path
        for facts in pod_frames:
            assert facts.encap is Wire.VXLAN
            assert facts.vni == VNI and facts.udp_dport == VXLAN_PORT
            assert facts.ip_proto == 1
        assert {(f.outer_src, f.outer_dst) for f in requests_} == {(UNDERLAY[W], UNDERLAY[W3])}
        assert {(f.outer_src, f.outer_dst) for f in replies} == {(UNDERLAY[W3], UNDERLAY[W])}
    assert_nothing_left(docker_engine, captures.run_id, [cap_w.container_id, cap_w3.container_id])


def test_tcpdump_runs_with_net_raw_and_net_admin_and_nothing_more(docker_engine, capture_image):
    argv = capture_command("lo", "", 256, 1, 3.0)
    try:
        output = docker_engine.containers.run(capture_image, argv, network_mode="none", cap_drop=["ALL"],
                                              cap_add=["NET_RAW", "NET_ADMIN"], user="65534:65534", remove=True,
                                              stdout=False, stderr=True)
    except docker.errors.ContainerError as err:  # `timeout` ends the capture with 124 when no packet came
        assert err.exit_status == 124, err.stderr
        output = err.stderr
    assert b"listening on lo" in output, output
