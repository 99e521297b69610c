"""Admission: capture pods need Pod Security `privileged`; vxcap says which door is shut and the line that opens it.

The fake enforces Pod Security as the API server does (the namespace's
pod-security.kubernetes.io/enforce label, the plugin's own message) and can put a
policy engine's validating webhook in front of pods.
"""

from __future__ import annotations

import pytest

from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from vxcap.adapters.kube import KubeError
from vxcap.adapters.kube.errors import RBAC_HINT
from vxcap.targets.cluster import ClusterTarget

ENFORCE = "pod-security.kubernetes.io/enforce"
LABEL_LINE = "kubectl label namespace {} pod-security.kubernetes.io/enforce=privileged --overwrite"
NODES = ("k01-worker", "k01-worker3")
KYVERNO = (
    'admission webhook "validate.kyverno.svc-fail" denied the request: policy Pod/vxcap/vxcap-capture-r1-k01-worker '
    "for resource violation: disallow-host-namespaces: host-namespaces: 'validation error: Sharing the host namespaces "
    "is disallowed. The fields spec.hostNetwork, spec.hostIPC, and spec.hostPID must be unset or set to `false`. "
    "rule host-namespaces failed at path /spec/hostNetwork/'"
)


def namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}, "status": {"phase": "Active"}}


def target(fake, **options) -> ClusterTarget:
    return ClusterTarget("r1", str(fake.kubeconfig), capture="pod", ready_timeout=60, **options)


def provision(fake, **options) -> str | None:
    """Provision test and capture pods; the error's one line, or None. Everything made is removed."""
    run = target(fake, **options)
    try:
        run.provision(NODES)
        return None
    except KubeError as err:
        assert "\n" not in str(err)
        return str(err)
    finally:
        run.release()


def test_a_namespace_vxcap_manages_is_relabelled_privileged(start_fake_kube):
    fake = start_fake_kube(namespaces={"vxcap": namespace("vxcap", **{"app.kubernetes.io/managed-by": "vxcap", ENFORCE: "baseline"})})
    assert provision(fake) is None
    assert fake.kube.namespaces["vxcap"]["metadata"]["labels"][ENFORCE] == "privileged"
    assert len(fake.kube.requested("PATCH", "/api/v1/namespaces/vxcap")) == 1


def test_a_relabel_refused_gives_the_exact_kubectl_line(start_fake_kube):
    fake = start_fake_kube(
        namespaces={"vxcap": namespace("vxcap", **{"app.kubernetes.io/managed-by": "vxcap", ENFORCE: "restricted"})},
        forbidden={("patch", "namespaces")},
    )
    said = provision(fake)
    assert said.startswith("namespace vxcap (vxcap's) enforces Pod Security level 'restricted', which refuses capture pods")
    assert said.endswith(f"run `{LABEL_LINE.format('vxcap')}`")
    assert fake.kube.requested("POST", "/api/v1/namespaces/vxcap/pods") == []


def test_someone_elses_namespace_is_left_alone_and_the_line_given(start_fake_kube):
    fake = start_fake_kube(namespaces={"team": namespace("team", **{ENFORCE: "baseline"})})
    said = provision(fake, namespace="team")
    assert said == (
        "namespace team enforces Pod Security level 'baseline', which refuses vxcap's capture pods (hostNetwork, NET_RAW, "
        f"NET_ADMIN); it is not vxcap's, so vxcap leaves it alone: `{LABEL_LINE.format('team')}`, or give capture pods "
        "a namespace of their own with --capture-namespace"
    )
    assert fake.kube.namespaces["team"]["metadata"]["labels"] == {ENFORCE: "baseline"}
    assert fake.kube.requested("PATCH", "/api/v1/namespaces/team") == []


def test_a_pod_security_refusal_is_named_not_taken_for_rbac(start_fake_kube):
    # The lookup is forbidden, so vxcap cannot see the label: the API server's refusal must speak.
    fake = start_fake_kube(namespaces={"vxcap": namespace("vxcap", **{ENFORCE: "baseline"})}, forbidden={("get", "namespaces")})
    said = provision(fake)
    assert said.startswith("Pod Security admission refused to create pod vxcap/vxcap-capture-r1-k01-")
    assert ('violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), non-default capabilities '
            '(container "capture" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add)') in said
    assert LABEL_LINE.format("vxcap") in said and "--capture-namespace" in said
    assert RBAC_HINT not in said


def test_a_policy_engine_denial_is_named_not_taken_for_rbac(start_fake_kube):
    def kyverno(ns: str, pod: dict):
        return (400, KYVERNO.replace("vxcap-capture-r1-k01-worker", pod["metadata"]["name"])) if pod["spec"].get("hostNetwork") else None

    fake = start_fake_kube(webhook=kyverno)
    said = provision(fake)
    assert said.startswith("a policy engine's admission webhook (validate.kyverno.svc-fail) refused to create pod vxcap/vxcap-capture-r1-")
    assert "exempt namespace vxcap" in said and "--capture-namespace" in said
    assert RBAC_HINT not in said


def test_a_forbidden_lookup_is_not_taken_for_exists(start_fake_kube):
    fake = start_fake_kube(forbidden={("get", "namespaces"), ("create", "namespaces")})
    said = provision(fake)
    assert said.startswith("cannot tell whether namespace vxcap exists: forbidden to get it (")
    assert said.endswith(f"kubectl create namespace vxcap && {LABEL_LINE.format('vxcap')}")
    assert fake.kube.requested("POST", "/api/v1/namespaces/vxcap/pods") == []


def test_a_forbidden_lookup_of_a_namespace_that_exists_goes_on(start_fake_kube):
    fake = start_fake_kube(namespaces={"vxcap": namespace("vxcap", **{ENFORCE: "privileged"})}, forbidden={("get", "namespaces")})
    assert provision(fake) is None


def test_capture_pods_in_their_own_namespace_leave_the_test_namespace_restricted(start_fake_kube):
    fake = start_fake_kube(namespaces={"apps": namespace("apps", **{ENFORCE: "restricted"})})
    run = target(fake, namespace="apps", capture_namespace="vxcap-capture")
    try:
        pods = run.provision(NODES)
        assert sorted(pods) == sorted(NODES)
        roles = {ns: {p["metadata"]["labels"]["vxcap.io/role"] for p in fake.kube.pods_in(ns)} for ns in ("apps", "vxcap-capture")}
        assert roles == {"apps": {"probe"}, "vxcap-capture": {"capture"}}
        assert fake.kube.namespaces["vxcap-capture"]["metadata"]["labels"][ENFORCE] == "privileged"
        assert fake.kube.namespaces["apps"]["metadata"]["labels"] == {ENFORCE: "restricted"}
    finally:
        run.release()
    assert fake.kube.pods_in("apps") == [] and fake.kube.pods_in("vxcap-capture") == []


def test_a_namespace_made_for_test_pods_only_is_restricted(start_fake_kube):
    fake = start_fake_kube()
    run = target(fake, namespace="probes", capture_namespace="captures")
    try:
        run.provision(NODES)
    finally:
        run.release()
    assert fake.kube.namespaces["probes"]["metadata"]["labels"][ENFORCE] == "restricted"
    assert fake.kube.namespaces["captures"]["metadata"]["labels"][ENFORCE] == "privileged"
