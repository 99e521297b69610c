"""Waits that end: a pod the kubelet cannot start settles the wait at once, with the reason and the fix.

The fake behaves as a node does: a pod pinned with nodeName whose image is not on
its node stays Pending with ErrImagePull, then ImagePullBackOff; a bad reference
is InvalidImageName; a config error is CreateContainerConfigError. The waits use
a long timeout: were a terminal reason not recognised, the error would be the
deadline's ("pods not Ready after ..."), which each test rules out.
"""

from __future__ import annotations

import pytest

from tests.fakes.kube_api import Fate, start_fake_kube  # noqa: F401 (fixture)
from vxcap.adapters.kube import KubeCluster, KubeError
from vxcap.core.capture import CAPTURE_IMAGE
from vxcap.targets.cluster import ClusterTarget

NODES = ["k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"]
LONG = 120.0
IMAGE_EVERYWHERE = {node: {CAPTURE_IMAGE} for node in NODES}
FULL = f"docker.io/{CAPTURE_IMAGE}"
LOAD = "vxcap images load --kind k01"


def kube(fake) -> KubeCluster:
    return KubeCluster(str(fake.kubeconfig))


def message(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("backoff", [False, True], ids=["ErrImagePull", "ImagePullBackOff"])
def test_an_image_missing_on_the_node_ends_the_wait_with_the_load_command(start_fake_kube, monkeypatch, backoff):
    if backoff:  # the first state is missed: the wait starts after the back-off
        monkeypatch.setattr("tests.fakes.kube_api.BACKOFF_DELAY_S", 0.0)
    fake = start_fake_kube(node_images={**IMAGE_EVERYWHERE, "k01-worker3": set()})
    with pytest.raises(KubeError) as err:
        kube(fake).create_test_pods("r1", NODES, timeout=LONG)
    text = message(err)
    assert not text.startswith("pods not Ready after")
    assert text.startswith("pod vxcap-probe-r1-k01-worker3 on k01-worker3 cannot start (")
    assert (
        f"image {CAPTURE_IMAGE} is not on node k01-worker3 and cannot be pulled: load it onto the nodes with `{LOAD}`, "
        "or push it to a registry the nodes pull from and pass --image (docs/images.md)"
    ) in text
    if not backoff:
        assert f'ErrImagePull: rpc error: code = Unknown desc = failed to pull and unpack image "{FULL}"' in text
    assert "k01-worker:" not in text  # the nodes that hold the image are not blamed


def test_outside_kind_the_hint_is_the_registry(start_fake_kube):
    fake = start_fake_kube(context="prod-admin@prod", node_images={"k01-worker": set()})
    with pytest.raises(KubeError) as err:
        kube(fake).create_test_pods("r1", ["k01-worker"], timeout=LONG)
    text = message(err)
    assert "vxcap images load" not in text
    assert text.endswith(
        f"image {CAPTURE_IMAGE} is not on node k01-worker and cannot be pulled: "
        "push it to a registry the nodes pull from and pass --image (docs/images.md)"
    )


def test_an_image_the_registry_has_is_pulled(start_fake_kube):
    fake = start_fake_kube(node_images={"k01-worker": set()}, registry={"registry.local/vxcap/netshoot-lite:bookworm-v3"})
    pods = kube(fake).create_test_pods("r1", ["k01-worker"], image="registry.local/vxcap/netshoot-lite:bookworm-v3", timeout=LONG)
    assert list(pods) == ["k01-worker"]


def test_an_invalid_reference_names_the_option(start_fake_kube):
    fake = start_fake_kube(node_images=IMAGE_EVERYWHERE)
    with pytest.raises(KubeError) as err:
        kube(fake).create_test_pods("r1", ["k01-worker"], image="Registry.local/Netshoot:v9", timeout=LONG)
    text = message(err)
    assert "(InvalidImageName: Failed to apply default image tag" in text
    assert text.endswith("--image 'Registry.local/Netshoot:v9' is not a valid image reference")


def test_a_config_error_names_the_field(start_fake_kube):
    said = 'container has runAsNonRoot and image will run as root (pod: "vxcap-probe-r1-k01-worker_vxcap(0d1f)", container: probe)'
    fake = start_fake_kube(fates={"k01-worker": Fate(kind="waiting", reason="CreateContainerConfigError", message=said)})
    with pytest.raises(KubeError) as err:
        kube(fake).create_test_pods("r1", ["k01-worker"], timeout=LONG)
    text = message(err)
    assert f"(CreateContainerConfigError: {said})" in text
    assert text.endswith("the kubelet refused the pod's securityContext.runAsNonRoot (the image's user is root; vxcap's pods run as uid 65534)")


def test_capture_pods_are_created_with_the_test_pods_and_awaited_together(start_fake_kube):
    fake = start_fake_kube(node_images=IMAGE_EVERYWHERE)
    target = ClusterTarget("r1", str(fake.kubeconfig), capture="pod", ready_timeout=LONG)
    try:
        target.provision(("k01-worker", "k01-worker3"))
        posts = fake.kube.requested("POST", "/api/v1/namespaces/vxcap/pods")
        watches = [r for r in fake.kube.requested("GET", "/api/v1/namespaces/vxcap/pods") if r.query.get("watch")]
        requests = fake.kube.requests
        assert len(posts) == 4
        first_watch = requests.index(watches[0]) if watches else len(requests)
        assert all(requests.index(post) < first_watch for post in posts), "a pod was created after the wait began"
        assert {p["metadata"]["labels"]["vxcap.io/role"] for p in fake.kube.pods_in("vxcap")} == {"probe", "capture"}
    finally:
        target.release()


def test_a_capture_image_missing_fails_that_nodes_capture_not_the_run(start_fake_kube):
    images = {node: {CAPTURE_IMAGE} for node in NODES}
    fake = start_fake_kube(node_images=images)
    target = ClusterTarget("r1", str(fake.kubeconfig), capture="pod", capture_image="registry.local/mine:v1", ready_timeout=LONG)
    try:
        pods = target.provision(("k01-worker", "k01-worker3"))
        assert sorted(pods) == ["k01-worker", "k01-worker3"]  # the test pods are up
        with pytest.raises(KubeError) as err:
            target.start_capture("k01-worker3", None, "")
        text = message(err)
        assert "pod vxcap-capture-r1-k01-worker3 on k01-worker3 cannot start (ErrImagePull:" in text
        assert text.endswith(f"load it onto the nodes with `{LOAD}`, or push it to a registry the nodes pull from "
                             "and pass --capture-image (docs/images.md)")
    finally:
        target.release()
    assert fake.kube.pods_in("vxcap") == []


def test_a_container_the_runtime_cannot_create_ends_the_wait(start_fake_kube):
    from tests.fakes.kube_api import CommandRuntime

    class Refusing(CommandRuntime):
        def start(self, pod):
            raise RuntimeError("failed to create containerd task: failed to create shim task: OCI runtime create failed")

    fake = start_fake_kube(runtime=Refusing())
    with pytest.raises(KubeError) as err:
        kube(fake).create_test_pods("r1", ["k01-worker"], timeout=LONG)
    text = message(err)
    assert "(CreateContainerError: failed to create containerd task" in text
    assert text.endswith("the kubelet refused the pod's spec.containers[0]")


def test_a_test_pod_that_cannot_start_ends_the_wait_though_another_is_pending(start_fake_kube):
    # worker3 would wait for the scheduler forever; worker's image is missing: nothing left to wait for.
    fake = start_fake_kube(fates={"k01-worker3": Fate(kind="pending")}, node_images={"k01-worker": set(), "k01-worker3": {CAPTURE_IMAGE}})
    with pytest.raises(KubeError) as err:
        kube(fake).create_test_pods("r1", ["k01-worker", "k01-worker3"], timeout=LONG)
    text = message(err)
    assert text.startswith("pod vxcap-probe-r1-k01-worker on k01-worker cannot start (ErrImagePull")
    assert "k01-worker3" not in text
    # At the level of the wait: the pending pod was cut short, not waited out to the deadline.
    from vxcap.adapters.kube import pods

    cluster = kube(fake)
    ready, failed = pods.wait_settled(
        cluster.conn, "vxcap", ["vxcap-probe-r1-k01-worker", "vxcap-probe-r1-k01-worker3"],
        "vxcap.io/run-id=r1", LONG, required={"vxcap-probe-r1-k01-worker", "vxcap-probe-r1-k01-worker3"},
    )
    assert ready == {} and list(failed) == ["vxcap-probe-r1-k01-worker"]
