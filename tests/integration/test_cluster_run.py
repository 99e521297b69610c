"""`vxcap run` and `vxcap topology` against a cluster, through the same pipeline as the lab.

The cluster is the fake Kubernetes API of tests/fakes (real HTTP, real exec
WebSockets) in front of the real namespace lab: a test pod's commands run in
its node's lab pod namespace and the pod reports that namespace's address, so
`kubectl exec`-style pings are real pings over the kernel's VXLAN; a capture
pod (hostNetwork) runs tcpdump in the node's namespace. For the Docker backend
the nodes are Kind-like containers named exactly like the nodes, adopted by the
lab, so the capture helper joins them as it would join Kind's.

What a run reports is held to fixed values of the reference lab, to the lab run
of the same pair, and to scapy's own reading of the pcaps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import docker.errors
import pytest
from click.testing import CliRunner

from tests.docker_support import capture_image, docker_engine, docker_nodes, engine_client, lab_adopting, tcpdump_processes  # noqa: F401 (fixtures)
from tests.fakes import calico_objects as co
from tests.fakes.kube_api import Fate, FakeKube, start_fake_kube  # noqa: F401 (fixture)
from tests.fakes.lab_pods import LabPods
from tests.lab_support import (  # noqa: F401
    SESSION_PREFIX,
    assert_vxlan_both_ways,
    lab_session_guard,
    lab_test,
    running_lab,
    session_namespaces,
)
from vxcap.adapters.docker_capture import MANAGED_BY, MANAGED_BY_LABEL, NODE_LABEL, ROLE_LABEL, RUN_ID_LABEL
from vxcap.adapters.lab import NetnsLab
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
K01_NODES = (CP, W, W2, W3)
POD = {W: "192.168.81.65", W2: "192.168.164.129", W3: "192.168.209.65"}
UNDERLAY = {W: "10.10.10.11", W3: "10.10.20.13"}
NAMESPACE = "vxcap"  # where `vxcap run` puts its pods by default

# The reference lab as the lesson describes it (not as the fake was fed).
REFERENCE_NODES = {
    CP: ("10.10.10.10/24", "192.168.23.64/26", "192.168.23.64", "66:15:9d:fa:c6:aa"),
    W: ("10.10.10.11/24", "192.168.81.64/26", "192.168.81.64", "66:fb:ad:98:aa:13"),
    W2: ("10.10.10.12/24", "192.168.164.128/26", "192.168.164.128", "66:c7:4d:6e:6b:f3"),
    W3: ("10.10.20.13/24", "192.168.209.64/26", "192.168.209.64", "66:d2:0c:f0:ef:e5"),
}
SUBNET = {CP: "10.10.10", W: "10.10.10", W2: "10.10.10", W3: "10.10.20"}
COMPARED = ("verdict", "observed", "vni", "udp_dport", "outer_src", "outer_dst")


# ---------------------------------------------------------------- the cluster behind the fake


@pytest.fixture
def kind_like_nodes(docker_engine, docker_nodes):
    """Containers named exactly like the nodes, as Kind names its node containers."""
    for name in (W, W3):
        try:
            docker_engine.containers.get(name)
        except docker.errors.NotFound:
            continue
        pytest.skip(f"a container named {name} already exists here (a real Kind cluster?); the test needs that name")
    return {name: docker_nodes(name) for name in (W, W3)}


# ---------------------------------------------------------------- running vxcap and reading what it left


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(cli, list(args))


def vxcap_run(out: Path, *args: str, env: dict[str, str] | None = None):
    result = invoke("run", "--out", str(out), "--count", "2", *args, env=env)
    run_dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []
    run_dir = run_dirs[-1] if run_dirs else None
    report_file = run_dir / "report.json" if run_dir else None
    report = json.loads(report_file.read_text()) if report_file and report_file.exists() else None
    return result, run_dir, report


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def flows(report) -> dict[tuple[str, str], dict]:
    return {(f["src_node"], f["dst_node"]): f for f in report["flows"]}


def compared(report) -> dict[tuple[str, str], tuple]:
    return {key: tuple(flow[k] for k in COMPARED) for key, flow in flows(report).items()}


def assert_reference_flows(report) -> None:
    f = flows(report)
    assert set(f) == {(W, W3), (W3, W)}
    assert compared(report) == {
        (W, W3): ("pass", "vxlan", 4096, 4789, UNDERLAY[W], UNDERLAY[W3]),
        (W3, W): ("pass", "vxlan", 4096, 4789, UNDERLAY[W3], UNDERLAY[W]),
    }
    assert all(flow["packets"] >= 2 for flow in f.values())


def assert_the_wire_agrees(run_dir: Path) -> None:
    assert_vxlan_both_ways(run_dir, W, W3, POD, UNDERLAY)
    routes = json.loads((run_dir / f"{W}-eth1.route.json").read_text())
    assert any(r.get("dst") == "192.168.209.64/26" for r in routes), routes


# ---------------------------------------------------------------- nothing left behind


def netns_inodes(names) -> set[int]:
    return {os.stat(f"/run/netns/{name}").st_ino for name in names if os.path.exists(f"/run/netns/{name}")}


def lab_node_inodes(lab: NetnsLab) -> set[int]:
    return netns_inodes(lab.node_netns(node) for node in K01_NODES)


def our_tcpdumps(inodes: set[int] = frozenset()) -> list[int]:
    """tcpdumps this test could have caused: children of this process (the fake's
    runtime, the in-process lab run) or in one of the given network namespaces."""
    found = []
    for entry in tcpdump_processes():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            inode = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue  # it went away while we looked
        if ppid == os.getpid() or inode in inodes:
            found.append(int(entry.name))
    return found


def vxcap_containers_of_k01() -> list[str]:
    """Containers vxcap labelled for this cluster's nodes (none when no engine answers)."""
    client, _ = engine_client()
    if client is None:
        return []
    try:
        listed = client.containers.list(all=True, filters={"label": f"{MANAGED_BY_LABEL}={MANAGED_BY}"})
        return [c.name for c in listed if c.labels.get(NODE_LABEL) in K01_NODES]
    finally:
        client.close()


def assert_nothing_left(kube: FakeKube, inodes: set[int] = frozenset()) -> None:
    assert kube.pods_in(NAMESPACE) == []
    assert vxcap_containers_of_k01() == []
    assert our_tcpdumps(inodes) == []


def mutations(kube: FakeKube) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in kube.requests if r.method != "GET"]


def capture_containers_created(client, run_id: str, since: float) -> set[tuple[str, str]]:
    """(role, node) of every container the engine created for the run, from its event log."""
    events = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": f"{RUN_ID_LABEL}={run_id}"},
        decode=True,
    )
    return {(e["Actor"]["Attributes"][ROLE_LABEL], e["Actor"]["Attributes"][NODE_LABEL]) for e in events}


# ---------------------------------------------------------------- 1. topology


@pytest.mark.parametrize("group", [co.V1, co.V3], ids=["crd-v1", "v3-only"])
def test_topology_of_the_cluster_is_the_reference_and_plans_like_the_lab(start_fake_kube, group):
    fake = start_fake_kube(calico_groups=(group,))
    result = invoke("topology", "--kubeconfig", str(fake.kubeconfig), "--json")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    data = json.loads(result.stdout)
    nodes = {n["name"]: (n["underlay"], n["block"], n["vtep_ip"], n["vtep_mac"]) for n in data["nodes"]}
    assert nodes == REFERENCE_NODES
    paths = {(p["src"], p["dst"]): p["expected"] for p in data["paths"]}
    assert len(data["paths"]) == len(paths) == 12
    assert paths[(W, W3)] == "vxlan" and paths[(W, W2)] == "plain"
    assert paths == {
        (a, b): "plain" if SUBNET[a] == SUBNET[b] else "vxlan" for a in K01_NODES for b in K01_NODES if a != b
    }

    lab = invoke("topology", "--lab", "--json", "--prefix", SESSION_PREFIX)
    assert lab.exit_code == ExitStatus.SUCCESS, lab.output
    assert data["paths"] == json.loads(lab.stdout)["paths"]

    table = invoke("topology", "--kubeconfig", str(fake.kubeconfig))
    assert table.exit_code == ExitStatus.SUCCESS, table.output
    assert "other subnet: 10.10.20.13 is not in 10.10.10.0/24" in table.stdout
    assert mutations(fake.kube) == []  # topology only reads
    assert_nothing_left(fake.kube)


# ---------------------------------------------------------------- 2. the real thing, through Docker


@lab_test
def test_run_on_kind_like_nodes_captures_through_docker_like_the_lab(tmp_path, start_fake_kube, docker_engine, kind_like_nodes):
    # The lab's own run of the pair first: what the cluster run must agree with.
    lab_result, _, lab_report = vxcap_run(tmp_path / "lab", "--lab", "--prefix", SESSION_PREFIX, "--pair", "worker,worker3")
    assert lab_result.exit_code == ExitStatus.SUCCESS, lab_result.output
    assert not session_namespaces()

    with lab_adopting(kind_like_nodes) as lab:
        runtime = LabPods(lab)
        fake = start_fake_kube(runtime=runtime)
        inodes = lab_node_inodes(lab)
        outcomes = {}
        for capture in ("docker", "auto"):
            started = time.time()
            result, run_dir, report = vxcap_run(
                tmp_path / capture, "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig), "--capture", capture
            )
            outcomes[capture] = (result, run_dir, report, started)
            assert_nothing_left(fake.kube, inodes)
        roles_started = {role for role, _ in runtime.started}

    assert not session_namespaces()
    assert roles_started == {"probe"}  # no capture pod: both runs captured through Docker
    for capture, (result, run_dir, report, started) in outcomes.items():
        assert result.exit_code == ExitStatus.SUCCESS, (capture, result.output)
        assert_reference_flows(report)
        assert compared(report) == compared(lab_report)
        assert_the_wire_agrees(run_dir)
        made = capture_containers_created(docker_engine, report["run_id"], started)
        assert {("capture", W), ("capture", W3)} <= made, (capture, made)


@lab_test
def test_node_blocks_in_two_ippools_keep_the_plain_same_subnet_directions_in_the_capture(
    tmp_path, start_fake_kube, docker_engine, docker_nodes
):
    # k01's blocks split over two pools (no single pool to put in a filter): worker's block in the
    # first, worker2's and worker3's in the second. worker <-> worker2 is same-subnet, plain pod to
    # pod: the capture must name the pods, or those frames never reach the pcap ("no packets seen").
    for name in (W, W2, W3):
        try:
            docker_engine.containers.get(name)
        except docker.errors.NotFound:
            continue
        pytest.skip(f"a container named {name} already exists here (a real Kind cluster?); the test needs that name")
    containers = {name: docker_nodes(name) for name in (W, W2, W3)}
    calico = co.lab_calico(co.V1)
    calico["ippools"] = [co.ippool(co.V1, name="pool-a", cidr="192.168.0.0/17"),
                         co.ippool(co.V1, name="pool-b", cidr="192.168.128.0/17")]
    runs = {}
    with lab_adopting(containers) as lab:
        fake = start_fake_kube(runtime=LabPods(lab), calico={co.V1: calico})
        for mode in ("precise", "wide"):
            runs[mode] = vxcap_run(tmp_path / mode, "--pair", "worker,worker2", "--pair", "worker,worker3",
                                   "--kubeconfig", str(fake.kubeconfig), "--capture", "docker",
                                   "--capture-filter", mode)
            assert_nothing_left(fake.kube, lab_node_inodes(lab))
    assert not session_namespaces()
    for mode, (result, run_dir, report) in runs.items():
        assert result.exit_code == ExitStatus.SUCCESS, (mode, result.output)
        f = flows(report)
        assert {d: (x["verdict"], x["observed"]) for d, x in f.items()} == {
            (W, W2): ("pass", "plain"), (W2, W): ("pass", "plain"), (W, W3): ("pass", "vxlan"), (W3, W): ("pass", "vxlan")}
        assert all(x["packets"] >= 2 for x in f.values())
        assert {c["filter"]["mode"] for c in report["captures"]} == {mode}
        assert all(POD[W] in c["filter"]["bpf"] and POD[W2] in c["filter"]["bpf"] for c in report["captures"])


# ---------------------------------------------------------------- 3. capture pods, the pcap through the API


@lab_test
def test_run_with_capture_pods_streams_the_pcaps_through_the_api(tmp_path, start_fake_kube):
    with running_lab() as lab:
        runtime = LabPods(lab)
        fake = start_fake_kube(runtime=runtime)
        inodes = lab_node_inodes(lab)
        result, run_dir, report = vxcap_run(
            tmp_path / "pod", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig), "--capture", "pod"
        )
        assert_nothing_left(fake.kube, inodes)
        # auto with no Docker engine to ask: capture pods, and a passing run
        no_docker = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
        auto, auto_dir, auto_report = vxcap_run(
            tmp_path / "auto", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig), env=no_docker
        )
        assert_nothing_left(fake.kube, inodes)
    assert not session_namespaces()

    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert_reference_flows(report)
    assert_the_wire_agrees(run_dir)
    assert auto.exit_code == ExitStatus.SUCCESS, auto.output
    assert_reference_flows(auto_report)
    assert runtime.started.count(("capture", W)) == 2 and runtime.started.count(("capture", W3)) == 2
    tcpdump_execs = [
        r for r in fake.kube.requested("GET", rf"/api/v1/namespaces/{NAMESPACE}/pods/vxcap-capture-[^/]+/exec")
        if r.query.get("command", [])[:1] == ["timeout"] and "tcpdump" in r.query["command"]
    ]
    assert len(tcpdump_execs) == 4  # one per node and run


# ---------------------------------------------------------------- 4. failure modes


def test_unreachable_cluster(tmp_path, start_fake_kube):
    fake = start_fake_kube()
    url = fake.kube.url
    fake.kube.stop()  # its port is closed now; the kubeconfig still points at it
    result, run_dir, _ = vxcap_run(tmp_path / "out", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig))
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert error_lines(result) == [f"error: cannot reach the Kubernetes API at {url} (context kind-k01) to list nodes: connection refused"]
    assert "Traceback" not in result.output and run_dir is None
    assert_nothing_left(fake.kube)


GARBAGE = [
    pytest.param(b"clusters: [ {{ users", "is not valid YAML", id="broken-yaml"),
    pytest.param(b"just some words\n", "is not a kubeconfig (expected a mapping with clusters, users, contexts)", id="not-a-mapping"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", "cannot be used: 'utf-8' codec can't decode byte 0x89", id="binary"),
]


@pytest.mark.parametrize("content,says", GARBAGE)
def test_bad_kubeconfig(tmp_path, content, says):
    garbage = tmp_path / "kubeconfig"
    garbage.write_bytes(content)
    result, run_dir, _ = vxcap_run(tmp_path / "out", "--pair", "worker,worker3", "--kubeconfig", str(garbage))
    assert result.exit_code == ExitStatus.USAGE, result.output
    (line,) = error_lines(result)
    assert line.startswith(f"error: kubeconfig {garbage} {says}"), line
    assert "Traceback" not in result.output and run_dir is None
    assert vxcap_containers_of_k01() == [] and our_tcpdumps() == []


def test_unknown_node_lists_the_nodes(tmp_path, start_fake_kube):
    fake = start_fake_kube()
    result, run_dir, _ = vxcap_run(tmp_path / "out", "--pair", "worker,worker9", "--kubeconfig", str(fake.kubeconfig))
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert error_lines(result) == [f"error: unknown node 'worker9'; nodes: {', '.join(K01_NODES)}"]
    assert "Traceback" not in result.output and run_dir is None
    assert mutations(fake.kube) == []
    assert_nothing_left(fake.kube)


def test_no_calico(tmp_path, start_fake_kube):
    fake = start_fake_kube(calico_groups=())
    result, run_dir, _ = vxcap_run(tmp_path / "out", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig))
    assert result.exit_code == ExitStatus.USAGE, result.output
    (line,) = error_lines(result)
    assert line.startswith("error: no Calico found in context kind-k01: ") and "is Calico installed?" in line
    assert "Traceback" not in result.output and run_dir is None
    assert mutations(fake.kube) == []
    assert_nothing_left(fake.kube)


def test_docker_not_reachable_with_capture_docker(tmp_path, start_fake_kube):
    fake = start_fake_kube()
    socket = f"unix://{tmp_path}/no-docker.sock"
    result, run_dir, _ = vxcap_run(
        tmp_path / "out", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig), "--capture", "docker",
        env={"DOCKER_HOST": socket},
    )
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert error_lines(result) == [f"error: Docker is not reachable at {socket}: start dockerd or use --capture pod"]
    assert "Traceback" not in result.output and run_dir is None
    assert mutations(fake.kube) == []  # said before anything was made
    assert_nothing_left(fake.kube)


# ---------------------------------------------------------------- 5. a pod that never becomes Ready


def test_pod_never_ready_fails_the_run_with_its_events(tmp_path, start_fake_kube):
    fake = start_fake_kube(fates={W3: Fate(kind="pending")})
    result, run_dir, report = vxcap_run(
        tmp_path / "out", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig), "--capture", "pod",
        "--ready-timeout", "2",
    )
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert report["verdict"] == "fail" and report["flows"] == []
    (provision,) = [e for e in report["errors"] if e.startswith("provision failed:")]
    assert "pods not Ready after 2s" in provision
    assert f"vxcap-probe-{report['run_id']}-{W3} on {W3}: Pending" in provision
    assert "events: FailedScheduling: 0/4 nodes are available" in provision
    setup = [case for case in ET.parse(run_dir / "junit.xml").iter("testcase") if case.get("name") == "setup"]
    messages = [error.get("message") for case in setup for error in case.iter("error")]
    assert provision in messages
    assert_nothing_left(fake.kube)


# ---------------------------------------------------------------- 6. Ctrl-C in the middle of a cluster run


@contextmanager
def lab_for(capture: str, request):
    """The lab behind the fake: plain for capture pods, on Kind-like containers for Docker."""
    if capture == "docker":
        with lab_adopting(request.getfixturevalue("kind_like_nodes")) as lab:
            yield lab
    else:
        with running_lab() as lab:
            yield lab


@lab_test
@pytest.mark.parametrize("capture", ["pod", "docker"])
def test_sigint_during_a_cluster_run_leaves_nothing(tmp_path, start_fake_kube, request, capture):
    with lab_for(capture, request) as lab:
        fake = start_fake_kube(runtime=LabPods(lab))
        inodes = lab_node_inodes(lab)
        # The fake serves from this process; vxcap reaches it over real HTTP.
        proc = subprocess.Popen(
            [sys.executable, "-m", "vxcap", "run", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig),
             "--capture", capture, "--out", str(tmp_path), "--count", "100"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            seen = ""
            while time.monotonic() < deadline and "probe" not in seen:
                line = proc.stderr.readline()
                if not line:
                    break
                seen += line
            assert "probe" in seen, seen
            time.sleep(1.0)  # a few echo requests on the wire
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == ExitStatus.INTERRUPTED, seen + out + err
        assert "Traceback" not in err
        assert_nothing_left(fake.kube, inodes)
    assert not session_namespaces()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["verdict"] == "fail"
    assert any(e.startswith("interrupted during probe") for e in report["errors"]), report["errors"]
    forward = flows(report)[(W, W3)]
    assert forward["observed"] == "vxlan" and forward["packets"] > 0
