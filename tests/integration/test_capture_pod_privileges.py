"""Capture pods held to their securityContext: real containers, a real tcpdump, as nobody.

The fake Kubernetes API's capture pods run here as Docker containers confined as
the pod spec says (tests/fakes/docker_pods.py: user, capabilities, no_new_privs,
read-only root, seccomp), in the network namespace of a Kind-like node
container that the namespace lab adopted as that node, so tcpdump sees the
lab's VXLAN on eth1 as it would on a Kind node. The test pods stay the lab's
pod namespaces (tests/fakes/lab_pods.py).

What the kernel gave the tcpdump is read from its /proc/<pid>/status while it
runs; what it captured is read back with scapy. The twins run specs a kubelet
would also run, and that cannot capture: the spec vxcap built before (root,
`-Z root`, no_new_privs), the current one with no_new_privs, and an image whose
tcpdump has no file capabilities. Each must fail the run with one line that
says what the capture image needs, and leave nothing behind.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import docker.errors
import pytest
from click.testing import CliRunner

from tests.docker_support import (  # noqa: F401 (fixtures)
    TEST_LABEL,
    capture_image,
    container_pid,
    docker_engine,
    docker_nodes,
    lab_adopting,
    netns_inode,
    tcpdump_pids,
)
from tests.fakes.docker_pods import DockerPods
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from tests.fakes.lab_pods import LabPods
from tests.lab_support import assert_vxlan_both_ways, lab_session_guard, lab_test, session_namespaces  # noqa: F401
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W3 = "k01-worker", "k01-worker3"
POD = {W: "192.168.81.65", W3: "192.168.209.65"}  # the lab's test pods
UNDERLAY = {W: "10.10.10.11", W3: "10.10.20.13"}
NAMESPACE = "vxcap"
NOBODY = "65534"
# linux/capability.h: CAP_NET_ADMIN 12, CAP_NET_RAW 13.
NET_RAW_AND_NET_ADMIN = (1 << 12) | (1 << 13)
SECCOMP_FILTER = "2"  # /proc/<pid>/status "Seccomp": a filter is loaded (RuntimeDefault)
WHAT_THE_IMAGE_NEEDS = (
    "the capture pod runs as uid 65534, so its image needs a tcpdump with file capabilities "
    "cap_net_raw,cap_net_admin=eip: build vxcap's with scripts/build-capture-image and load it onto the nodes "
    "(on Kind: vxcap images load --kind <cluster>), or pass --capture-image"
)
NO_PERMISSION = "tcpdump: eth1: You don't have permission to perform this capture on that device (socket: Operation not permitted)"
CANNOT_BE_ROOT = "tcpdump: Couldn't change to 'root' uid=0 gid=0: Operation not permitted"

# The capture container's securityContext as vxcap built it before running as nobody.
ROOT_SPEC = {
    "privileged": False,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsUser": 0,
    "runAsNonRoot": False,
    "capabilities": {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]},
}


# ---------------------------------------------------------------- the cluster: Kind-like nodes, pods as containers


@pytest.fixture
def kind_like_nodes(docker_nodes):
    """A container for each captured node, as Kind makes them (named vxp-*: vxcap
    finds them only through the fake's pod runtime, never by name)."""
    tag = uuid.uuid4().hex[:4]
    return {node: docker_nodes(f"vxp-{tag}-{node}") for node in (W, W3)}


class TcpdumpWatch:
    """While a run goes on, reads /proc/<pid>/status of every tcpdump in the runtime's
    containers (the last reading of each pid is kept: the capture lasts seconds)."""

    FIELDS = ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")

    def __init__(self, runtime: DockerPods) -> None:
        self.runtime = runtime
        self.seen: dict[int, dict[str, str | int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tcpdump-watch", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            for pid in tcpdump_pids(self.runtime.container_ids()):
                try:
                    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
                    inode = netns_inode(pid)
                except OSError:
                    continue  # it ended while we looked
                status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
                self.seen[pid] = {key: status.get(key, "") for key in self.FIELDS} | {"netns": inode}

    def __enter__(self) -> TcpdumpWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def vxcap_run(out: Path, kubeconfig: Path, *args: str):
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "--count", "2", "--pair", "worker,worker3",
                                      "--kubeconfig", str(kubeconfig), "--capture", "pod", *args])
    run_dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []
    report = json.loads((run_dirs[-1] / "report.json").read_text()) if run_dirs else None
    return result, (run_dirs[-1] if run_dirs else None), report


def run_against_containers(tmp_path, start_fake_kube, docker_engine, nodes, *args, amend=None):
    """`vxcap run --capture pod` with capture pods as confined containers: (result, run dir, report, runtime, watch)."""
    with lab_adopting(nodes) as lab, DockerPods(docker_engine, nodes, delegate=LabPods(lab), amend=amend) as pods:
        fake = start_fake_kube(runtime=pods)
        with TcpdumpWatch(pods) as watch:
            result, run_dir, report = vxcap_run(tmp_path / "out", fake.kubeconfig, *args)
        assert_nothing_left(fake.kube, docker_engine, pods)
    assert not session_namespaces()
    return result, run_dir, report, pods, watch


def assert_nothing_left(kube, client, pods: DockerPods) -> None:
    assert kube.pods_in(NAMESPACE) == []
    ids = pods.container_ids()
    assert ids, "no capture pod ran as a container"
    for container_id in ids:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(container_id)
    assert tcpdump_pids(ids) == []


# ---------------------------------------------------------------- the spec vxcap builds captures


@lab_test
def test_capture_pods_capture_as_nobody_holding_only_net_raw_and_net_admin(tmp_path, start_fake_kube, docker_engine, kind_like_nodes):
    node_netns = {node: netns_inode(container_pid(c)) for node, c in kind_like_nodes.items()}
    result, run_dir, report, pods, watch = run_against_containers(tmp_path, start_fake_kube, docker_engine, kind_like_nodes)

    assert result.exit_code == ExitStatus.SUCCESS, result.output
    verdicts = {(f["src_node"], f["dst_node"]): (f["verdict"], f["observed"], f["outer_src"], f["outer_dst"]) for f in report["flows"]}
    assert verdicts == {
        (W, W3): ("pass", "vxlan", UNDERLAY[W], UNDERLAY[W3]),
        (W3, W): ("pass", "vxlan", UNDERLAY[W3], UNDERLAY[W]),
    }
    assert_vxlan_both_ways(run_dir, W, W3, POD, UNDERLAY)

    # Both capture pods ran from vxcap's capture image, in their node's network namespace.
    assert sorted((o["image"], o["network_mode"]) for o in pods.ran.values()) == sorted(
        ("vxcap/netshoot-lite:bookworm-v3", f"container:{c.id}") for c in kind_like_nodes.values()
    )
    # What the kernel gave each tcpdump: nobody, NET_RAW and NET_ADMIN and nothing else, bounded so.
    assert sorted(s["netns"] for s in watch.seen.values()) == sorted(node_netns.values())
    for status in watch.seen.values():
        assert status["Uid"].split() == [NOBODY] * 4 and status["Gid"].split() == [NOBODY] * 4, status
        for key in ("CapBnd", "CapEff", "CapPrm"):
            assert int(status[key], 16) == NET_RAW_AND_NET_ADMIN, (key, status)
        assert int(status["CapInh"], 16) == 0 and int(status["CapAmb"], 16) == 0, status
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("0", SECCOMP_FILTER), status


# ---------------------------------------------------------------- specs that cannot capture: one line says why


def image_without_file_caps(client, image: str) -> str:
    """A copy of the capture image whose tcpdump lost its file capabilities (cp keeps no xattr)."""
    tag = f"vxp-nofilecaps-{uuid.uuid4().hex[:6]}:test"
    helper = client.containers.run(image, ["sleep", "60"], network_mode="none", detach=True, labels={TEST_LABEL: "image-build"})
    try:
        for argv in (["cp", "/usr/bin/tcpdump", "/var/tmp/tcpdump"], ["mv", "/var/tmp/tcpdump", "/usr/bin/tcpdump"]):
            code, out = helper.exec_run(argv)
            assert code == 0, out
        code, out = helper.exec_run(["getcap", "/usr/bin/tcpdump"])
        assert (code, out.strip()) == (0, b""), out
        repository, _, version = tag.partition(":")
        helper.commit(repository=repository, tag=version)
    finally:
        helper.remove(force=True)
    return tag


def as_root_like_before(pod: dict) -> dict:
    if pod["spec"].get("hostNetwork"):
        pod["spec"]["containers"][0]["securityContext"] = json.loads(json.dumps(ROOT_SPEC))
    return pod


def without_escalation(pod: dict) -> dict:
    if pod["spec"].get("hostNetwork"):
        pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = False
    return pod


@lab_test
@pytest.mark.parametrize("case", ["root-as-before", "no-new-privileges", "image-without-file-caps"])
def test_a_capture_pod_that_may_not_capture_fails_the_run_in_one_line(tmp_path, start_fake_kube, docker_engine, kind_like_nodes, capture_image, case):
    args: tuple[str, ...] = ()
    amend = None
    made_image = None
    if case == "root-as-before":
        amend, refusal = as_root_like_before, CANNOT_BE_ROOT
    elif case == "no-new-privileges":
        amend, refusal = without_escalation, NO_PERMISSION
    else:
        made_image = image_without_file_caps(docker_engine, capture_image)
        args, refusal = ("--capture-image", made_image), NO_PERMISSION
    try:
        result, run_dir, report, pods, watch = run_against_containers(
            tmp_path, start_fake_kube, docker_engine, kind_like_nodes, *args, amend=amend
        )
    finally:
        if made_image is not None:
            docker_engine.images.remove(made_image, force=True)

    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert "Traceback" not in result.output
    assert report["verdict"] == "fail"
    said = [e for e in report["errors"] if "did not start" in e]
    assert sorted(said) == sorted(
        f"capture on {node}/eth1 did not start: tcpdump on {node}:eth1 was not permitted to capture ({refusal}): {WHAT_THE_IMAGE_NEEDS}"
        for node in (W, W3)
    )
    assert WHAT_THE_IMAGE_NEEDS in " ".join(result.output.split())  # the console says it too
    if made_image is not None:
        assert {o["image"] for o in pods.ran.values()} == {made_image}  # --capture-image reaches the capture pods
