"""vxcap's image under the exact securityContext each pod gets: the probes work in it.

The fake Kubernetes API's test pods run here as Docker containers confined as
the pod spec vxcap builds says (tests/fakes/docker_pods.py: uid 65534, every
capability dropped, no_new_privs, read-only root, RuntimeDefault seccomp, the
ping_group_range sysctl), on an internal Docker network (no route out). vxcap's
own code drives them through the API: the DF ping (`ping -M do`), the TCP
exchange that carries the MSS (python3), and `ip -d -j link`. Before, the probes
were only ever handed to host tools running as root.

The broken twins are images a kubelet would run too, and in which a probe
cannot work: each fails with one line that says why.
"""

from __future__ import annotations

import json
import uuid
from ipaddress import IPv4Address

import docker.errors
import pytest

from tests.docker_support import TEST_LABEL, capture_image, derived_image, docker_engine, unique  # noqa: F401 (fixtures)
from tests.fakes.docker_pods import DockerPods
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from vxcap.core.errors import VxcapError
from vxcap.targets.cluster import ClusterTarget

W, W3 = "k01-worker", "k01-worker3"
NOBODY = "65534"
SECCOMP_FILTER = "2"
DOCKER_MTU = 1500  # an internal bridge network's: the largest DF payload is 1500 - 28
PORT = 41000


@pytest.fixture
def pod_network(docker_engine):
    """An internal bridge network for the test pods: they reach each other and nothing else."""
    name = unique("vxi")
    network = docker_engine.networks.create(name, driver="bridge", internal=True, labels={TEST_LABEL: "pod-network"})
    yield name
    network.remove()


@pytest.fixture
def pods_on_docker(start_fake_kube, docker_engine, pod_network):
    """A factory: a ClusterTarget whose test pods are confined containers; on exit nothing of them is left."""
    made: list[tuple[ClusterTarget, DockerPods]] = []

    def make(image: str, amend=None) -> ClusterTarget:
        runtime = DockerPods(docker_engine, {}, network=pod_network, amend=amend)
        fake = start_fake_kube(runtime=runtime)
        run_id = f"img{uuid.uuid4().hex[:6]}"
        # Test pods only: "docker" keeps provision() from making capture pods (no node containers here).
        target = ClusterTarget(run_id, str(fake.kubeconfig), image=image, capture="docker", ready_timeout=60)
        made.append((target, runtime))
        return target

    yield make
    for target, runtime in made:
        target.release()
        ids = runtime.container_ids()
        runtime.close()
        for container_id in ids:
            with pytest.raises(docker.errors.NotFound):
                docker_engine.containers.get(container_id)


def status_of(target: ClusterTarget, node: str) -> dict[str, str]:
    result = target.cluster.exec(target.pods[node].name, ["cat", "/proc/self/status"])
    assert result.returncode == 0, result.stderr
    return dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)


def test_the_probes_work_under_the_test_pods_securitycontext(pods_on_docker, capture_image):
    target = pods_on_docker(capture_image)
    pods = target.provision((W, W3))

    # The confinement is real, so what works below works under it.
    for node in (W, W3):
        status = status_of(target, node)
        assert status["Uid"].split() == [NOBODY] * 4 and status["Gid"].split() == [NOBODY] * 4, status
        for key in ("CapBnd", "CapEff", "CapPrm", "CapAmb"):
            assert int(status[key], 16) == 0, (key, status)
        assert (status["NoNewPrivs"].strip(), status["Seccomp"].strip()) == ("1", SECCOMP_FILTER), status
        written = target.cluster.exec(pods[node].name, ["touch", "/vxcap-rw-check"])
        assert written.returncode != 0 and "Read-only file system" in written.stderr

    # ping: plain, then DF at the largest payload that fits and one byte over (-M do).
    for src, dst in ((W, W3), (W3, W)):
        echoes = target.ping(src, pods[dst].ip, 2)
        assert (echoes.transmitted, echoes.received) == (2, 2), echoes
        fits, said = target.df_ping(src, pods[dst].ip, DOCKER_MTU - 28, 1.0)
        assert (fits.transmitted, fits.received) == (1, 1), said
        too_big, said = target.df_ping(src, pods[dst].ip, DOCKER_MTU - 27, 1.0)
        assert too_big.received == 0 and too_big.refused_too_big and too_big.local_mtu == DOCKER_MTU, said

    # The TCP exchange whose SYNs carry the MSS: python3 in both pods.
    ok, said = target.tcp_exchange(W, W3, pods[W3].ip, PORT)
    assert ok, said

    # ip -j: the pod's own links, as the MTU report reads them.
    links = json.loads(target._pod_links(W) or "null")
    eth0 = next(link for link in links if link["ifname"] == "eth0")
    assert eth0["mtu"] == DOCKER_MTU


# ---------------------------------------------------------------- twins that cannot probe: one line says why


@pytest.fixture
def twin_image(docker_engine, capture_image):
    """Images derived for a test; request it before pods_on_docker, so its containers are gone when the image goes."""
    made: list[str] = []

    def make(argv: list[str]) -> str:
        made.append(derived_image(docker_engine, capture_image, argv))
        return made[-1]

    yield make
    for tag in made:
        docker_engine.images.remove(tag, force=True)


def test_an_image_whose_ping_keeps_file_capabilities_cannot_ping_in_a_pod_that_drops_all(twin_image, pods_on_docker):
    # Debian's iputils-ping as installed: cap_net_raw=ep. Outside the bounding set, exec refuses it.
    target = pods_on_docker(twin_image(["setcap", "cap_net_raw=ep", "/usr/bin/ping"]))
    pods = target.provision((W, W3))
    with pytest.raises(VxcapError) as refused:
        target.ping(W, pods[W3].ip, 1)
    line = str(refused.value)
    assert "\n" not in line
    assert line.startswith(f"ping in pod vxcap/{pods[W].name}: ") and "operation not permitted" in line, line


def test_an_image_without_python3_fails_the_tcp_exchange_naming_python3(twin_image, pods_on_docker):
    target = pods_on_docker(twin_image(["sh", "-c", "rm -f /usr/bin/python3*"]))
    pods = target.provision((W, W3))
    with pytest.raises(VxcapError) as missing:
        target.tcp_exchange(W, W3, IPv4Address(str(pods[W3].ip)), PORT)
    line = str(missing.value)
    assert "\n" not in line
    assert 'exec: "python3": executable file not found in $PATH' in line, line


def without_ping_group_range(pod: dict) -> dict:
    """What a runtime that drops the pod's sysctl leaves: the kernel's default range, no group may open ICMP sockets."""
    pod["spec"]["securityContext"]["sysctls"] = [{"name": "net.ipv4.ping_group_range", "value": "1 0"}]
    return pod


def test_without_the_ping_group_range_sysctl_the_test_pods_cannot_ping(pods_on_docker, capture_image):
    target = pods_on_docker(capture_image, amend=without_ping_group_range)
    pods = target.provision((W, W3))
    result, said = target.df_ping(W, pods[W3].ip, 100, 1.0)
    assert (result.transmitted, result.received) == (0, 0), said
    assert "ping: socket: Operation not permitted" in said
    assert result.message == "ping: => missing cap_net_raw+p capability or setuid?"
