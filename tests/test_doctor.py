"""`vxcap doctor` against the in-process API server (real HTTP, real client), with
deploy/rbac.yaml's rules as its authorizer, and on this machine for the lab."""

import pytest
from click.testing import CliRunner

from tests.fakes import calico_objects as co
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from tests.test_rbac import authorize, granted_rules
from vxcap.cli.main import cli
from vxcap.core.doctor import NEEDED
from vxcap.exit_status import ExitStatus


def doctor(*args):
    return CliRunner().invoke(cli, ["doctor", *[str(a) for a in args]])


def test_the_doctor_asks_for_exactly_what_deploy_rbac_yaml_grants():
    granted = set()
    for scope, rule in granted_rules():
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    granted.add((verb, group, resource, scope is not None))
    asked = {(p.verb, g, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, p.namespaced)
             for p in NEEDED for g in p.groups}
    assert asked == granted


def test_a_cluster_granted_deploy_rbac_yaml_is_ready_and_every_permission_was_reviewed(start_fake_kube):
    fake = start_fake_kube(authorize=authorize)
    result = doctor("--kubeconfig", fake.kubeconfig)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("✓ kubeconfig") and "context kind-k01" in lines[0]
    assert any(line.startswith("✓ API server reachable") and "v1.32.2" in line for line in lines)
    assert any(line.startswith("✓ RBAC (deploy/rbac.yaml)") and f"all {len(NEEDED)} permissions granted" in line
               for line in lines)
    assert any(line.startswith("✓ Calico found") and "4 nodes, vxlanMode CrossSubnet, VNI 4096" in line for line in lines)
    assert lines[-1] == "ready: a cluster run can start here"
    reviewed = {(a.verb, a.resource, a.subresource, a.namespace) for a in fake.kube.access_reviews}
    assert ("create", "pods", "exec", "vxcap") in reviewed and ("list", "nodes", "", "") in reviewed
    assert [r for r in fake.kube.requests if r.method != "GET" and "selfsubjectaccessreviews" not in r.path] == []


def test_a_missing_permission_fails_by_name_with_the_fix(start_fake_kube):
    fake = start_fake_kube(authorize=authorize, forbidden={("create", "pods/exec")})
    result = doctor("--kubeconfig", fake.kubeconfig, "--namespace", "probe")
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    # In namespace probe nothing namespaced is granted (the Role lives in vxcap): each says so.
    failed = [line for line in result.output.splitlines() if line.startswith("✗ ")]
    assert any(line.startswith("✗ may create pods/exec in namespace probe") for line in failed)
    assert any(line.startswith("✗ may list events in namespace probe") for line in failed)
    assert "fix: kubectl apply -f deploy/rbac.yaml" in result.output
    assert result.output.splitlines()[-1].startswith("not ready")


def test_no_calico_is_a_failed_check(start_fake_kube):
    fake = start_fake_kube(calico_groups=())
    result = doctor("--kubeconfig", fake.kubeconfig)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert any(line.startswith("✗ Calico found") for line in result.output.splitlines())


def test_an_unreachable_api_server_is_one_failed_line_and_the_rest_not_checked(start_fake_kube):
    fake = start_fake_kube()
    fake.kube.stop()
    result = doctor("--kubeconfig", fake.kubeconfig)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    lines = result.output.splitlines()
    assert lines[1].startswith("✗ API server reachable") and "connection refused" in lines[1]
    assert any(line.startswith("- Calico found") and "not checked" in line for line in lines)


def test_cluster_options_with_lab_are_a_usage_error():
    result = doctor("--lab", "--context", "x")
    assert result.exit_code == ExitStatus.USAGE and "--context is for a cluster" in result.output


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="the lab checks pass only as root")
def test_this_machine_is_ready_for_the_lab():
    result = doctor("--lab")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert [line.split("  ")[0] for line in result.output.splitlines()[:4]] == [
        "✓ root or the capabilities", "✓ tcpdump present", "✓ ip present", "✓ kernel VXLAN support"]


def namespace(name, enforce, ours=False):
    labels = {"pod-security.kubernetes.io/enforce": enforce}
    if ours:
        labels["app.kubernetes.io/managed-by"] = "vxcap"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize("namespaces,args,mark,says", [
    ({}, [], "✓", "namespace vxcap does not exist yet"),
    ({"vxcap": namespace("vxcap", "privileged")}, [], "✓", "namespace vxcap admits them"),
    ({"vxcap": namespace("vxcap", "restricted", ours=True)}, [], "!", "vxcap relabels it"),
    ({"team": namespace("team", "baseline")}, ["--capture-namespace", "team"], "✗", "it is not vxcap's"),
])
def test_the_capture_namespace_is_asked_whether_it_admits_capture_pods(start_fake_kube, namespaces, args, mark, says):
    fake = start_fake_kube(authorize=authorize, namespaces=namespaces)
    result = doctor("--kubeconfig", fake.kubeconfig, *args)
    (line,) = [line for line in result.output.splitlines() if "capture pods admitted" in line]
    assert line.startswith(f"{mark} capture pods admitted") and says in line, result.output
    assert result.exit_code == (ExitStatus.VERDICT_FAILED if mark == "✗" else ExitStatus.SUCCESS), result.output
