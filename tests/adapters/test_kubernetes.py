"""The Kubernetes adapter against the in-process fake API, over real HTTP and WebSockets.

The kubernetes client is used as it is; only the server it talks to is fake.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapWriter, rdpcap

from tests.fakes import calico_objects as co
from tests.fakes.kube_api import V4_PROTOCOL, V5_PROTOCOL, CommandRuntime, Fate, ProcessRuntime, fake_kube, start_fake_kube  # noqa: F401 (fixtures)
from vxcap.adapters.kube import DEFAULT_IMAGE, KubeCluster, KubeError
from vxcap.core.capture import CAPTURE_IMAGE
from vxcap.core.errors import InputError
from vxcap.core.model import Mode, Pod

PING_OUTPUT = """PING {dst} ({dst}) 56(84) bytes of data.
64 bytes from {dst}: icmp_seq=1 ttl=62 time=0.204 ms
64 bytes from {dst}: icmp_seq=2 ttl=62 time=0.188 ms

--- {dst} ping statistics ---
{sent} packets transmitted, {got} received, {loss}% packet loss, time 1002ms
"""


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def cluster(fake) -> KubeCluster:
    return KubeCluster(kubeconfig=str(fake.kubeconfig))


# ---------------------------------------------------------------- discovery


@pytest.mark.parametrize("groups", [(co.V1,), (co.V3,), (co.V1, co.V3)], ids=["v1", "v3-only", "both"])
def test_discovery_reads_the_lab(start_fake_kube, groups):
    fake = start_fake_kube(calico_groups=groups)
    kube = cluster(fake)
    topology = kube.discover()
    assert topology.cluster == "k01"  # context kind-k01
    assert topology.overlay.mode is Mode.CROSS_SUBNET
    assert (topology.overlay.vni, topology.overlay.port, topology.overlay.mtu) == (4096, 4789, None)
    assert topology.pool == IPv4Network("192.168.0.0/16")
    worker3 = topology.node("k01-worker3")
    assert worker3.underlay == IPv4Interface("10.10.20.13/24")
    assert worker3.block == IPv4Network("192.168.209.64/26")
    assert worker3.vtep_ip == IPv4Address("192.168.209.64")
    assert worker3.vtep_mac == "66:d2:0c:f0:ef:e5"
    assert kube.calico_group == groups[0]


def test_v3_only_cluster_is_read_after_the_v1_group_answers_404(start_fake_kube):
    fake = start_fake_kube(calico_groups=(co.V3,))
    cluster(fake).discover()
    asked = [(r.path, r.method) for r in fake.kube.requests if "/apis/" in r.path]
    assert asked[0] == ("/apis/crd.projectcalico.org/v1/ippools", "GET")
    assert ("/apis/projectcalico.org/v3/ippools", "GET") in asked
    assert ("/apis/projectcalico.org/v3/blockaffinities", "GET") in asked
    assert ("/apis/projectcalico.org/v3/felixconfigurations", "GET") in asked


@pytest.mark.parametrize("group", co.GROUPS)
def test_deleted_affinities_are_skipped_in_each_group(start_fake_kube, group):
    calico = co.lab_calico(group)
    calico["blockaffinities"] = [a for a in calico["blockaffinities"] if a["spec"]["node"] != "k01-worker"] + [
        co.block_affinity(group, "k01-worker", "192.168.0.0/26", deleted=True),
        co.block_affinity(group, "k01-worker", "192.168.81.64/26"),
    ]
    fake = start_fake_kube(calico_groups=(group,), calico={group: calico})
    assert cluster(fake).discover().node("k01-worker").block == IPv4Network("192.168.81.64/26")


def test_felix_settings_come_through(start_fake_kube):
    calico = co.lab_calico(co.V1)
    calico["felixconfigurations"] = [co.felix_configuration(co.V1, vxlanVNI=7000, vxlanPort=4790, vxlanMTU=1400)]
    fake = start_fake_kube(calico={co.V1: calico})
    overlay = cluster(fake).discover().overlay
    assert (overlay.vni, overlay.port, overlay.mtu) == (7000, 4790, 1400)


def test_a_per_node_felix_override_comes_through_the_api(start_fake_kube):
    calico = co.lab_calico(co.V1)
    calico["felixconfigurations"] = [co.felix_configuration(co.V1),
                                     co.felix_configuration(co.V1, "node.k01-worker3", vxlanPort=8472)]
    fake = start_fake_kube(calico={co.V1: calico})
    kube = cluster(fake)
    topology = kube.discover()
    assert topology.overlay.port == 4789
    assert topology.node("k01-worker3").port == 8472 and topology.node("k01-worker").port is None
    assert any(note.startswith("FelixConfiguration node.k01-worker3 sets vxlanPort 8472") for note in kube.notes)


def test_context_name_without_kind_prefix_is_the_cluster(start_fake_kube):
    fake = start_fake_kube(context="prod-east")
    assert cluster(fake).discover().cluster == "prod-east"


def test_the_internal_ip_fallback_is_noted(start_fake_kube):
    fake = start_fake_kube(nodes=co.lab_nodes(with_underlay_annotation=False))
    kube = cluster(fake)
    topology = kube.discover()
    assert topology.node("k01-worker").underlay == IPv4Interface("172.18.0.5/32")
    assert any("InternalIP 172.18.0.5 as /32" in note for note in kube.notes)


def test_no_calico_is_a_one_line_error(start_fake_kube):
    fake = start_fake_kube(calico_groups=())
    with pytest.raises(KubeError) as err:
        cluster(fake).discover()
    assert "no Calico found" in one_line(err)


def test_calico_without_pools_is_no_calico(start_fake_kube):
    fake = start_fake_kube(calico={co.V1: {"ippools": [], "blockaffinities": [], "felixconfigurations": []}})
    with pytest.raises(KubeError) as err:
        cluster(fake).discover()
    assert "no Calico found" in one_line(err)


def test_ip_in_ip_on_an_ipv6_pool_is_refused_in_one_line(start_fake_kube):
    # IPv4 IP-in-IP is judged now (tests/adapters/test_kubernetes_formats.py); Calico has none over IPv6.
    calico = co.lab_calico(co.V1)
    calico["ippools"].append(co.ippool(co.V1, name="v6", cidr="fd00:192:168::/48", vxlan_mode="Never", ipip_mode="Always"))
    fake = start_fake_kube(calico={co.V1: calico})
    with pytest.raises(KubeError) as err:
        cluster(fake).discover()
    assert "no IP-in-IP over IPv6" in one_line(err)


def test_forbidden_is_a_one_line_error_pointing_at_rbac(start_fake_kube):
    fake = start_fake_kube(forbidden={("list", "nodes")})
    with pytest.raises(KubeError) as err:
        cluster(fake).discover()
    text = one_line(err)
    assert text.startswith("forbidden to list nodes:")
    assert 'cannot list resource "nodes"' in text and "deploy/rbac.yaml" in text


def test_an_unreachable_api_is_a_one_line_error(start_fake_kube, tmp_path):
    fake = start_fake_kube()
    # A port nothing listens on: bound, then closed again.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = fake.kubeconfig.read_text().replace(fake.kube.url, f"http://127.0.0.1:{port}")
    path = tmp_path / "closed"
    path.write_text(text)
    with pytest.raises(KubeError) as err:
        KubeCluster(kubeconfig=str(path)).discover()
    message = one_line(err)
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in message
    assert "connection refused" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("clusters: [\n  - name: a\n   bad", "not valid YAML"),
        ("just a string", "kubeconfig"),
        ("", "kubeconfig"),
        ("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n", "no current-context"),
    ],
    ids=["broken-yaml", "not-a-mapping", "empty", "no-context"],
)
def test_a_bad_kubeconfig_is_a_one_line_error(tmp_path, content, expected):
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    with pytest.raises(KubeError) as err:
        KubeCluster(kubeconfig=str(path)).discover()
    assert expected in one_line(err)


def test_a_missing_kubeconfig_file_is_a_one_line_error(tmp_path):
    with pytest.raises(KubeError) as err:
        KubeCluster(kubeconfig=str(tmp_path / "nope")).discover()
    assert "no such file" in one_line(err)


def test_an_unknown_context_lists_the_known_ones(fake_kube):
    with pytest.raises(KubeError) as err:
        KubeCluster(kubeconfig=str(fake_kube.kubeconfig), context="kind-k02").discover()
    assert "no context 'kind-k02' (contexts: kind-k01)" in one_line(err)


# ---------------------------------------------------------------- test pods


NODES = ("k01-control-plane", "k01-worker3")


def test_test_pods_are_pinned_labelled_tolerating_and_unprivileged(fake_kube):
    kube = cluster(fake_kube)
    pods = kube.create_test_pods("r1", NODES)
    assert set(pods) == set(NODES)
    made = {p["spec"]["nodeName"]: p for p in fake_kube.kube.pods_in("vxcap")}
    assert set(made) == set(NODES)
    for node, pod in made.items():
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "vxcap"
        assert labels["vxcap.io/run-id"] == "r1"
        tolerations = pod["spec"]["tolerations"]
        for key in ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"):
            assert {"key": key, "operator": "Exists", "effect": "NoSchedule"} in tolerations
        assert not pod["spec"].get("hostNetwork")
        container = pod["spec"]["containers"][0]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert not security.get("privileged")
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert {"name": "net.ipv4.ping_group_range", "value": "0 2147483647"} in pod["spec"]["securityContext"]["sysctls"]
        assert container["image"] == DEFAULT_IMAGE
        # the fake gave each pod an address from its node's block; the adapter reports that one
        assert pods[node].ip == IPv4Address(pod["status"]["podIP"])
    assert pods["k01-worker3"].ip in IPv4Network("192.168.209.64/26")


def test_the_default_image_is_vxcaps_own_pinned_tag():
    # Nothing from Docker Hub at run time: the test pods run the image the capture helpers run.
    name, _, tag = DEFAULT_IMAGE.rpartition(":")
    assert name == "vxcap/netshoot-lite" and tag not in ("", "latest")
    assert DEFAULT_IMAGE == CAPTURE_IMAGE


def test_the_namespace_is_created_when_absent_and_reused_when_present(fake_kube):
    kube = cluster(fake_kube)
    kube.create_test_pods("r1", NODES[:1])
    assert "vxcap" in fake_kube.kube.namespaces
    assert fake_kube.kube.namespaces["vxcap"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    kube.create_test_pods("r2", NODES[:1])
    assert len(fake_kube.kube.requested("POST", "/api/v1/namespaces")) == 1


def test_image_and_namespace_can_be_chosen(fake_kube):
    kube = cluster(fake_kube)
    pods = kube.create_test_pods("r1", NODES[:1], image="registry.local/netshoot:v9", namespace="probe-ns")
    assert [p["spec"]["containers"][0]["image"] for p in fake_kube.kube.pods_in("probe-ns")] == ["registry.local/netshoot:v9"]
    assert list(pods) == [NODES[0]]


def test_readiness_is_watched_not_polled(start_fake_kube):
    fake = start_fake_kube(fates={node: Fate(delay=0.6) for node in NODES})
    started = time.monotonic()
    cluster(fake).create_test_pods("r1", NODES, timeout=10)
    assert time.monotonic() - started >= 0.6
    pods_path = "/api/v1/namespaces/vxcap/pods"
    watches = [r for r in fake.kube.requested("GET", pods_path) if r.query.get("watch") == ["true"]]
    lists = [r for r in fake.kube.requested("GET", pods_path) if "watch" not in r.query]
    assert len(watches) == 1 and len(lists) == 1
    assert fake.kube.requested("GET", pods_path + "/.*") == []  # never a GET per pod


def test_each_change_in_how_many_pods_are_ready_is_told_for_the_live_display(start_fake_kube):
    fake = start_fake_kube(fates={node: Fate(delay=0.3 * (i + 1)) for i, node in enumerate(NODES)})
    heard = []
    KubeCluster(kubeconfig=str(fake.kubeconfig), on_wait=heard.append).create_test_pods("r1", NODES, timeout=10)
    assert len(NODES) >= 2
    assert heard == [f"pods Ready {i}/{len(NODES)}" for i in range(len(NODES) + 1)]


def test_pods_are_created_concurrently(start_fake_kube):
    # Each POST waits at the server until the other one has arrived: a sequential
    # client would hang here until the barrier times out.
    barrier = threading.Barrier(2, timeout=5)
    fake = start_fake_kube()
    original = fake.kube.create_pod

    def create_pod(namespace, body):
        fake.kube._lock.release()
        try:
            barrier.wait()
        finally:
            fake.kube._lock.acquire()
        return original(namespace, body)

    fake.kube.create_pod = create_pod
    cluster(fake).create_test_pods("r1", NODES, timeout=10)
    assert not barrier.broken


def test_a_pod_still_pending_fails_with_its_events(start_fake_kube):
    fake = start_fake_kube(fates={"k01-worker3": Fate(kind="pending")})
    started = time.monotonic()
    with pytest.raises(KubeError) as err:
        cluster(fake).create_test_pods("r1", NODES, timeout=1.0)
    assert time.monotonic() - started < 5
    message = one_line(err)
    assert message.startswith("pods not Ready after 1s:")
    assert "vxcap-probe-r1-k01-worker3 on k01-worker3: Pending" in message
    assert "FailedScheduling: 0/4 nodes are available:" in message
    assert "k01-control-plane:" not in message  # the Ready one is not blamed
    events = fake.kube.requested("GET", "/api/v1/namespaces/vxcap/events")
    assert [r.query["fieldSelector"] for r in events] == [["involvedObject.name=vxcap-probe-r1-k01-worker3"]]


def test_a_pod_that_ends_fails_at_once_with_its_log(start_fake_kube):
    fate = Fate(kind="failed", log=b"sleep: invalid number 'x'\n", exit_code=1)
    fake = start_fake_kube(fates={"k01-worker3": fate})
    started = time.monotonic()
    with pytest.raises(KubeError) as err:
        cluster(fake).create_test_pods("r1", NODES, timeout=30)
    assert time.monotonic() - started < 5
    message = one_line(err)
    assert "k01-worker3: Failed" in message and "Error exit 1" in message
    assert "log: sleep: invalid number 'x'" in message


def test_a_bad_run_id_is_refused_before_anything_is_created(fake_kube):
    with pytest.raises(KubeError) as err:
        cluster(fake_kube).create_test_pods("not a label!", NODES)
    assert "run id" in one_line(err)
    assert fake_kube.kube.requests == []


# ---------------------------------------------------------------- cleanup


def _foreign_pod(fake, name: str) -> None:
    with fake.kube._lock:
        fake.kube.namespaces.setdefault("vxcap", {"metadata": {"name": "vxcap"}})
        fake.kube.create_pod("vxcap", {"metadata": {"name": name, "labels": {"app": "other"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}})


def test_delete_run_removes_that_run_only_and_cleanup_everything_vxcap_made(fake_kube):
    kube = cluster(fake_kube)
    kube.create_test_pods("r1", NODES)
    kube.create_test_pods("r2", NODES[:1])
    _foreign_pod(fake_kube, "someone-elses")
    assert sorted(kube.delete_run("r1")) == ["vxcap-probe-r1-k01-control-plane", "vxcap-probe-r1-k01-worker3"]
    assert sorted(p["metadata"]["name"] for p in fake_kube.kube.pods_in("vxcap")) == [
        "someone-elses",
        "vxcap-probe-r2-k01-control-plane",
    ]
    assert kube.delete_run("r1") == []  # twice is fine
    assert kube.cleanup() == ["vxcap-probe-r2-k01-control-plane"]
    assert [p["metadata"]["name"] for p in fake_kube.kube.pods_in("vxcap")] == ["someone-elses"]


def test_cleanup_of_a_namespace_that_does_not_exist_is_nothing(fake_kube):
    assert cluster(fake_kube).cleanup("never-made") == []


# ---------------------------------------------------------------- ping (exec over WebSocket)


def _ping_handler(sent: int, got: int, code: int):
    def handler(pod, argv, io):
        dst = argv[-1]
        io.stdout(PING_OUTPUT.format(dst=dst, sent=sent, got=got, loss=100 * (sent - got) // sent))
        return code

    return handler


@pytest.mark.parametrize("protocol", [V4_PROTOCOL, V5_PROTOCOL])
def test_ping_runs_iputils_in_the_source_pod(start_fake_kube, protocol):
    runtime = CommandRuntime({"ping": _ping_handler(3, 3, 0)})
    fake = start_fake_kube(runtime=runtime, exec_protocol=protocol)
    kube = cluster(fake)
    pods = kube.create_test_pods("r1", NODES)
    result = kube.ping(pods["k01-control-plane"], pods["k01-worker3"].ip, count=3, size=1400, dont_fragment=True)
    assert (result.transmitted, result.received) == (3, 3)
    (pod_name, argv), = runtime.execs
    assert pod_name == "vxcap-probe-r1-k01-control-plane"
    assert argv[0] == "ping" and argv[-1] == str(pods["k01-worker3"].ip)
    assert argv[argv.index("-c") + 1] == "3"
    assert argv[argv.index("-s") + 1] == "1400"
    assert argv[argv.index("-M") + 1] == "do"


def test_ping_with_losses_reports_them_and_does_not_raise(start_fake_kube):
    fake = start_fake_kube(runtime=CommandRuntime({"ping": _ping_handler(4, 1, 1)}))
    kube = cluster(fake)
    pods = kube.create_test_pods("r1", NODES)
    result = kube.ping(pods["k01-worker3"], pods["k01-control-plane"].ip, count=4)
    assert (result.transmitted, result.received) == (4, 1)


def test_exec_passes_the_exit_status_and_both_streams(start_fake_kube):
    def handler(pod, argv, io):
        io.stdout("out\n")
        io.stderr("err\n")
        return int(argv[1])

    fake = start_fake_kube(runtime=CommandRuntime({"exit": handler}))
    kube = cluster(fake)
    pods = kube.create_test_pods("r1", NODES[:1])
    result = kube.exec(pods[NODES[0]].name, ["exit", "42"])
    assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 42)
    assert kube.exec(pods[NODES[0]].name, ["exit", "0"]).returncode == 0


def test_a_missing_command_is_a_one_line_error(fake_kube):
    kube = cluster(fake_kube)
    pods = kube.create_test_pods("r1", NODES[:1])
    with pytest.raises(KubeError) as err:
        kube.ping(pods[NODES[0]], "192.168.209.65")
    assert 'executable file not found in $PATH' in one_line(err)


def test_exec_in_a_pod_that_is_gone_is_a_one_line_error(fake_kube):
    kube = cluster(fake_kube)
    with pytest.raises(KubeError) as err:
        kube.ping(Pod("vxcap-probe-gone", "k01-worker", IPv4Address("192.168.81.70")), "192.168.209.65")
    assert 'pods "vxcap-probe-gone" not found' in one_line(err)


def test_an_exec_that_hangs_times_out(start_fake_kube):
    release = threading.Event()

    def hang(pod, argv, io):
        release.wait(10)
        return 0

    fake = start_fake_kube(runtime=CommandRuntime({"hang": hang}))
    kube = cluster(fake)
    pods = kube.create_test_pods("r1", NODES[:1])
    try:
        with pytest.raises(KubeError) as err:
            kube.exec(pods[NODES[0]].name, ["hang"], timeout=0.5)
        assert "did not finish within 0.5s" in one_line(err)
    finally:
        release.set()


# ---------------------------------------------------------------- capture backend


def vxcap_frames() -> bytes:
    """A pcap of VXLAN and plain ICMP frames, built here with scapy."""
    frames = [
        Ether(src="02:42:0a:0a:0a:0b", dst="02:42:0a:0a:0a:01")
        / IP(src="10.10.10.11", dst="10.10.20.13")
        / UDP(sport=54321, dport=4789)
        / VXLAN(vni=4096)
        / Ether(src="66:fb:ad:98:aa:13", dst="66:d2:0c:f0:ef:e5")
        / IP(src="192.168.81.65", dst="192.168.209.65")
        / ICMP(id=7, seq=i)
        / (b"x" * 1372)
        for i in range(60)
    ]
    frames += [Ether() / IP(src="192.168.81.65", dst="192.168.164.129") / ICMP(seq=i) for i in range(5)]
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, linktype=1, sync=True)
    for frame in frames:
        writer.write(frame)
    writer.flush()
    return buffer.getvalue()


class FakeTcpdump:
    """tcpdump in the fake pod: says it listens, streams the pcap, ends on SIGINT (pkill)."""

    def __init__(self, pcap: bytes, exits_by_itself: bool = False):
        self.pcap = pcap
        self.exits_by_itself = exits_by_itself
        self.interrupted = threading.Event()
        self.argv: list[str] = []

    def tcpdump(self, pod, argv, io):
        self.argv = argv
        io.stderr("tcpdump: listening on eth1, link-type EN10MB (Ethernet), snapshot length 256 bytes\n")
        half = len(self.pcap) // 2
        io.stdout(self.pcap[:half])
        if not self.exits_by_itself:
            self.interrupted.wait(10)
        io.stdout(self.pcap[half:])
        io.stderr("65 packets captured\n65 packets received by filter\n0 packets dropped by kernel\n")
        return 0

    def pkill(self, pod, argv, io):
        assert argv == ["pkill", "-INT", "-x", "tcpdump"]
        if self.interrupted.is_set() or self.exits_by_itself:
            return 1  # no process matched
        self.interrupted.set()
        return 0


@pytest.mark.parametrize("exits_by_itself", [False, True], ids=["stopped", "ended-by-itself"])
def test_capture_streams_the_pcap_back_byte_for_byte(start_fake_kube, tmp_path, exits_by_itself):
    pcap = vxcap_frames()
    assert len(pcap) > 65536  # crosses WebSocket's 64-bit length encoding
    tcpdump = FakeTcpdump(pcap, exits_by_itself)
    fake = start_fake_kube(runtime=CommandRuntime({"tcpdump": tcpdump.tcpdump, "timeout": tcpdump.tcpdump, "pkill": tcpdump.pkill}))
    kube = cluster(fake)
    running = kube.start_capture("k01-worker", "eth1", "udp port 4789 or icmp", out_path=tmp_path / "w.pcap", run_id="r1")
    result = running.stop(timeout=5)
    assert result.path == tmp_path / "w.pcap"
    assert result.path.read_bytes() == pcap
    assert len(rdpcap(str(result.path))) == 65
    assert (result.captured, result.received, result.dropped, result.exit_code, result.killed) == (65, 65, 0, 0, False)
    assert tcpdump.argv[:3] == ["tcpdump", "-i", "eth1"]
    assert tcpdump.argv[tcpdump.argv.index("-w") + 1] == "-"
    assert tcpdump.argv[-1] == "udp port 4789 or icmp"
    assert running.stop() is result  # idempotent


def test_capture_pods_are_host_network_with_only_net_raw_and_net_admin(start_fake_kube, tmp_path):
    tcpdump = FakeTcpdump(vxcap_frames())
    fake = start_fake_kube(runtime=CommandRuntime({"tcpdump": tcpdump.tcpdump, "pkill": tcpdump.pkill}))
    kube = cluster(fake)
    kube.start_capture("k01-control-plane", out_path=tmp_path / "cp.pcap", run_id="r1").stop()
    (pod,) = fake.kube.pods_in("vxcap")
    spec = pod["spec"]
    assert spec["nodeName"] == "k01-control-plane"
    assert spec["hostNetwork"] is True
    assert not spec.get("hostPID") and not spec.get("hostIPC")
    assert not spec.get("volumes")
    container = spec["containers"][0]
    assert not container.get("volumeMounts")
    assert not spec.get("securityContext")  # all of it on the container, in one place
    # nobody, holding NET_RAW and NET_ADMIN through tcpdump's file capabilities: escalation
    # must be allowed for those (no_new_privs would ignore them), and drop ALL bounds it
    assert container["securityContext"] == {
        "privileged": False,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "capabilities": {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]},
        "allowPrivilegeEscalation": True,
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {"operator": "Exists"} in spec["tolerations"]  # the control plane's taint too
    assert pod["metadata"]["labels"]["vxcap.io/run-id"] == "r1"
    assert kube.delete_run("r1") == [pod["metadata"]["name"]]


def test_a_capture_pod_serves_every_capture_and_the_evidence_of_its_node(start_fake_kube, tmp_path):
    tables = {"link": '[{"ifname":"eth1","mtu":1500}]', "route": '[{"dst":"192.168.209.64/26","dev":"vxlan.calico"}]', "neigh": "[]"}

    def ip(pod, argv, io):
        io.stdout(tables[argv[-1]])
        return 0

    tcpdump = FakeTcpdump(vxcap_frames(), exits_by_itself=True)
    runtime = CommandRuntime({"tcpdump": tcpdump.tcpdump, "pkill": tcpdump.pkill, "ip": ip})
    fake = start_fake_kube(runtime=runtime)
    kube = cluster(fake)
    kube.start_capture("k01-worker", out_path=tmp_path / "1.pcap", run_id="r1").stop()
    kube.start_capture("k01-worker", out_path=tmp_path / "2.pcap", run_id="r1").stop()
    files = kube.node_tables("k01-worker", run_id="r1")
    assert files["link.json"] == tables["link"] and files["route.json"] == tables["route"]
    assert files["neigh.json"] == "[]"
    assert "executable file not found" in files["fdb.json"]  # no `bridge` in this pod: noted, not fatal
    assert len(fake.kube.pods_in("vxcap")) == 1
    evidence_argvs = [argv for _, argv in runtime.execs if argv[0] == "ip"]
    assert evidence_argvs == [["ip", "-d", "-j", "link"], ["ip", "-j", "route"], ["ip", "-j", "neigh"]]


def test_a_capture_that_cannot_start_is_a_one_line_error(fake_kube, tmp_path):
    with pytest.raises(KubeError) as err:
        cluster(fake_kube).start_capture("k01-worker", out_path=tmp_path / "x.pcap", run_id="r1")
    message = one_line(err)
    assert message.startswith("tcpdump on k01-worker:eth1 ended before listening")
    assert "executable file not found" in message


# What tcpdump 4.99 (Debian bookworm) prints when it may not capture, as seen in Docker
# with drop ALL + NET_RAW, NET_ADMIN: as nobody with no_new_privs (or without file
# capabilities), and as root, which must change user and lacks CAP_SETUID/CAP_SETGID.
REFUSALS = {
    "no-permission": (
        "tcpdump: eth1: You don't have permission to perform this capture on that device\n(socket: Operation not permitted)\n",
        "tcpdump: eth1: You don't have permission to perform this capture on that device (socket: Operation not permitted)",
    ),
    "root-cannot-change-user": (
        "tcpdump: Couldn't change to 'root' uid=0 gid=0: Operation not permitted\n",
        "tcpdump: Couldn't change to 'root' uid=0 gid=0: Operation not permitted",
    ),
    "no-cap-in-bounding-set": (
        "timeout: failed to run command 'tcpdump': Operation not permitted\n",
        "timeout: failed to run command 'tcpdump': Operation not permitted",
    ),
}


@pytest.mark.parametrize("stderr,quoted", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_capture_refused_for_lack_of_permission_says_what_the_image_needs(start_fake_kube, tmp_path, stderr, quoted):
    def refused(pod, argv, io):
        io.stderr(stderr)
        return 126 if stderr.startswith("timeout") else 1

    fake = start_fake_kube(runtime=CommandRuntime({"timeout": refused, "tcpdump": refused}))
    with pytest.raises(KubeError) as err:
        cluster(fake).start_capture("k01-worker", out_path=tmp_path / "x.pcap", run_id="r1")
    assert one_line(err) == (
        f"tcpdump on k01-worker:eth1 was not permitted to capture ({quoted}): the capture pod runs as uid 65534, "
        "so its image needs a tcpdump with file capabilities cap_net_raw,cap_net_admin=eip: build vxcap's with "
        "scripts/build-capture-image and load it onto the nodes (on Kind: vxcap images load --kind <cluster>), "
        "or pass --capture-image"
    )
    assert not (tmp_path / "x.pcap").exists()


def test_a_duration_wraps_tcpdump_in_timeout(start_fake_kube, tmp_path):
    tcpdump = FakeTcpdump(vxcap_frames(), exits_by_itself=True)
    fake = start_fake_kube(runtime=CommandRuntime({"timeout": tcpdump.tcpdump, "pkill": tcpdump.pkill}))
    cluster(fake).start_capture("k01-worker", duration=30, out_path=tmp_path / "t.pcap", run_id="r1").stop()
    assert tcpdump.argv[:5] == ["timeout", "-s", "INT", "30", "tcpdump"]


# ---------------------------------------------------------------- real processes behind the fake pods

FAKE_TCPDUMP = """
import signal, sys, threading
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
sys.stderr.write("tcpdump: listening on %s, link-type EN10MB (Ethernet), snapshot length 256 bytes\\n" % sys.argv[sys.argv.index("-i") + 1])
sys.stderr.flush()
sys.stdout.buffer.write(open(sys.argv[1], "rb").read())
sys.stdout.flush()
stop.wait(20)
sys.stderr.write("65 packets captured\\n70 packets received by filter\\n2 packets dropped by kernel\\n")
sys.exit(0 if stop.is_set() else 9)
"""


def test_a_process_runtime_runs_real_commands(start_fake_kube):
    fake = start_fake_kube(runtime=ProcessRuntime())
    kube = cluster(fake)
    pods = kube.create_test_pods("r1", NODES[:1])
    script = "import sys; sys.stdout.write('x' * 200000); sys.stderr.write('to stderr'); sys.exit(3)"
    result = kube.exec(pods[NODES[0]].name, [sys.executable, "-c", script])
    assert (len(result.stdout), result.stderr, result.returncode) == (200000, "to stderr", 3)


def test_a_real_process_captures_and_stops_on_sigint(start_fake_kube, tmp_path):
    pcap = vxcap_frames()
    (tmp_path / "source.pcap").write_bytes(pcap)
    (tmp_path / "tcpdump.py").write_text(FAKE_TCPDUMP)
    # Every exec becomes `python tcpdump.py source.pcap <argv>`: tcpdump's argv, a real process, real SIGINT.
    runtime = ProcessRuntime(prefix=lambda pod: [sys.executable, str(tmp_path / "tcpdump.py"), str(tmp_path / "source.pcap")])
    fake = start_fake_kube(runtime=runtime)
    kube = cluster(fake)
    result = kube.start_capture("k01-worker3", "eth1", out_path=tmp_path / "out.pcap", run_id="r1").stop(timeout=10)
    assert result.path.read_bytes() == pcap
    assert (result.captured, result.received, result.dropped, result.exit_code, result.killed) == (65, 70, 2, 0, False)


# ---------------------------------------------------------------- names are checked before they are used


def test_a_node_name_the_api_should_never_serve_is_refused_before_any_pod_is_made(start_fake_kube):
    evil = co.LabNode("../../etc", "10.10.10.11/24", "172.18.0.5", "192.168.81.64/26", "66:fb:ad:98:aa:13")
    nodes = (co.K01[0], evil, co.K01[3])
    fake = start_fake_kube(nodes=co.lab_nodes(nodes), calico={co.V1: co.lab_calico(co.V1, nodes)})
    with pytest.raises(InputError) as err:
        cluster(fake).discover()
    assert one_line(err).startswith("context kind-k01: node name '../../etc' is not valid: a node name is a DNS-1123 subdomain")
    assert [r for r in fake.kube.requests if r.method != "GET"] == []


@pytest.mark.parametrize("namespace", ["Kube System", "../vxcap", "vxcap.", "x" * 64])
def test_a_namespace_that_is_not_a_dns_label_is_refused_before_the_cluster_is_contacted(fake_kube, namespace):
    with pytest.raises(InputError, match=r"^namespace .* is not valid: a DNS-1123 label"):
        KubeCluster(kubeconfig=str(fake_kube.kubeconfig), namespace=namespace)
    kube = cluster(fake_kube)
    with pytest.raises(InputError, match="DNS-1123 label"):
        kube.create_test_pods("r1", NODES[:1], namespace=namespace)
    assert fake_kube.kube.requests == []


def test_a_bad_node_name_never_reaches_a_pod_spec(fake_kube):
    kube = cluster(fake_kube)
    for role in ("test", "capture"):
        with pytest.raises(InputError, match=r"^node name 'k01-worker --privileged' is not valid"):
            if role == "test":
                kube.create_test_pods("r1", ["k01-worker --privileged"])
            else:
                kube.create_capture_pods("r1", ["k01-worker --privileged"])
    assert fake_kube.kube.requested("POST", r".*") == []


def test_a_bad_interface_name_never_reaches_tcpdump(start_fake_kube, tmp_path):
    tcpdump = FakeTcpdump(vxcap_frames(), exits_by_itself=True)
    fake = start_fake_kube(runtime=CommandRuntime({"tcpdump": tcpdump.tcpdump, "pkill": tcpdump.pkill}))
    with pytest.raises(InputError, match=r"^capture interface 'eth1 -w /tmp/x' is not valid"):
        cluster(fake).start_capture("k01-worker", "eth1 -w /tmp/x", out_path=tmp_path / "x.pcap", run_id="r1")
    assert tcpdump.argv == []
    assert fake.kube.requested("GET", r".*/exec") == []


def test_exec_refuses_a_pod_name_that_is_not_a_dns_label(fake_kube):
    with pytest.raises(InputError, match="pod name '../kube-apiserver' is not valid"):
        cluster(fake_kube).exec("../kube-apiserver", ["true"])
    assert fake_kube.kube.requests == []
