"""Fixtures and helpers for tests that need the real Docker engine.

Import the fixtures into a test module (`from tests.docker_support import
docker_engine, capture_image, docker_nodes`). Everything skips with the reason
when no engine answers; the capture image is built with
scripts/build-capture-image when it is missing (about a minute with the
rootfs cached under /var/cache/vxcap, a few minutes without).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import pytest
import requests.exceptions

from tests.lab_support import SESSION_PREFIX, k01_spec
from vxcap.adapters.docker_capture import DEFAULT_IMAGE, MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL
from vxcap.adapters.lab import NetnsLab
from vxcap.adapters.netns import list_netns

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "scripts" / "build-capture-image"
BUILD_TIMEOUT_S = 30 * 60
# Test-made node containers carry this, not vxcap's managed-by label: they
# stand for Kind nodes, which vxcap must never clean up.
TEST_LABEL = "vxcap.io/test"
NODE_PREFIX = "vxd"


def engine_client() -> tuple[docker.DockerClient | None, str]:
    """A client of the local engine, or None and why not."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return None, f"no Docker engine at {where} (run scripts/start-dockerd): {' '.join(str(err).split())[:160]}"
    return client, ""


@pytest.fixture(scope="session")
def docker_engine():
    client, why = engine_client()
    if client is None:
        pytest.skip(why)
    yield client
    client.close()


def image_present(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture(scope="session")
def capture_image(docker_engine) -> str:
    """vxcap's capture image, built by scripts/build-capture-image if absent."""
    image = os.environ.get("VXCAP_CAPTURE_IMAGE", DEFAULT_IMAGE)
    if not image_present(docker_engine, image):
        if os.geteuid() != 0:
            pytest.skip(f"capture image {image} is missing and building it needs root")
        done = subprocess.run(
            [str(BUILD_SCRIPT)],
            env={**os.environ, "VXCAP_CAPTURE_IMAGE": image},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/build-capture-image failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    return image


def unique(prefix: str = NODE_PREFIX) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def start_node_container(client: docker.DockerClient, name: str, image: str):
    """A Kind-like node: its own empty network namespace, NET_ADMIN/NET_RAW, idling."""
    return client.containers.run(
        image,
        ["sleep", "infinity"],
        name=name,
        network_mode="none",
        cap_add=["NET_ADMIN", "NET_RAW"],
        labels={TEST_LABEL: "docker-node"},
        detach=True,
    )


def exec_ok(container, argv: list[str]) -> str:
    code, out = container.exec_run(argv)
    text = out.decode(errors="replace")
    assert code == 0, f"{argv} in {container.name} exited {code}: {text}"
    return text


@pytest.fixture
def docker_nodes(docker_engine, capture_image):
    """Factory of Kind-like node containers named vxd-*, all removed after the test."""
    made = []

    def make(name: str | None = None):
        container = start_node_container(docker_engine, name or unique(), capture_image)
        made.append(container)
        container.reload()
        return container

    yield make
    for container in made:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


def container_pid(container) -> int:
    container.reload()
    return int(container.attrs["State"]["Pid"])


def netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


@contextmanager
def lab_adopting(containers: dict) -> Iterator[NetnsLab]:
    """The k01 lab (root) with those Kind-like node containers' network namespaces as
    its nodes, {node name: container}; the lab and the attached names gone afterwards."""
    adopt = {node: f"{SESSION_PREFIX}-ctr-{node}" for node in containers}
    lab = NetnsLab(k01_spec(), prefix=SESSION_PREFIX, adopt=adopt)
    try:
        for node, container in containers.items():
            subprocess.run(["ip", "netns", "attach", adopt[node], str(container_pid(container))], check=True, capture_output=True)
        status = lab.up()
        assert status.healthy, status.to_dict()
        yield lab
    finally:
        lab.down(detach_adopted=True)
        left = [ns for ns in list_netns() if ns in adopt.values()]
        for ns in left:
            subprocess.run(["ip", "netns", "delete", ns], check=False)
        assert left == []


def vxcap_containers(client: docker.DockerClient, run_id: str) -> list[str]:
    """Names of the containers vxcap made for `run_id` that still exist."""
    filters = {"label": [f"{MANAGED_BY_LABEL}={MANAGED_BY}", f"{RUN_ID_LABEL}={run_id}"]}
    return [c.name for c in client.containers.list(all=True, filters=filters)]


def tcpdump_processes() -> Iterator[Path]:
    """/proc/<pid> of every tcpdump on the host (in containers and namespaces too).
    Reading one can still fail: the process may end while it is looked at."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "tcpdump":
                yield entry
        except OSError:
            continue  # it went away while we looked


def tcpdump_pids(container_ids) -> list[int]:
    """Host pids of tcpdump processes still in the cgroups of those containers."""
    ids = [cid for cid in container_ids if cid]
    found = []
    for entry in tcpdump_processes():
        try:
            cgroups = (entry / "cgroup").read_text()
        except OSError:
            continue
        if any(cid in cgroups for cid in ids):
            found.append(int(entry.name))
    return found


def assert_nothing_left(client: docker.DockerClient, run_id: str, container_ids=()) -> None:
    assert vxcap_containers(client, run_id) == []
    assert tcpdump_pids(container_ids) == []


def image_without_tcpdump(client: docker.DockerClient, image: str, tag: str) -> str:
    """A copy of the capture image with tcpdump deleted, committed locally as `tag`."""
    helper = client.containers.run(image, ["rm", "-f", "/usr/bin/tcpdump", "/usr/sbin/tcpdump"], network_mode="none", detach=True, labels={TEST_LABEL: "image-build"})
    try:
        assert helper.wait(timeout=60)["StatusCode"] == 0
        repository, _, version = tag.partition(":")
        helper.commit(repository=repository, tag=version or "latest")
    finally:
        helper.remove(force=True)
    return tag


def derived_image(client: docker.DockerClient, image: str, argv: list[str], name: str = "vxi-twin") -> str:
    """A copy of `image` changed by one root command (network none), committed under a throw-away tag."""
    tag = f"{name}-{uuid.uuid4().hex[:6]}:test"
    helper = client.containers.run(image, argv, network_mode="none", detach=True, labels={TEST_LABEL: "image-build"})
    try:
        assert helper.wait(timeout=60)["StatusCode"] == 0, helper.logs()
        repository, _, version = tag.partition(":")
        helper.commit(repository=repository, tag=version)
    finally:
        helper.remove(force=True)
    return tag
