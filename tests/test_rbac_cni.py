"""deploy/rbac-cni.yaml (with deploy/rbac.yaml) against what `topology --cni` really asks for.

The fake API server authorizes every request with both files' rules, resourceNames included,
while vxcap discovers each CNI: a call the files do not allow is refused with 403 as RBAC
would, and a permission no call uses fails the last test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fakes import cni_objects as cn
from tests.fakes.kube_api import Access, FakeKube
from vxcap.adapters.kube.cni import discover
from vxcap.adapters.kube.connection import connect
from vxcap.core.cni import Cni

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def granted(*names: str) -> list[tuple[str | None, dict]]:
    docs = [d for name in names for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    roles = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")): d for d in docs
             if d["kind"] in ("ClusterRole", "Role")}
    rules = []
    for binding in (d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        assert any(s["name"] == "vxcap" and s["namespace"] == "vxcap" for s in binding["subjects"])
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role = roles[(ref["kind"], ref["name"], scope if ref["kind"] == "Role" else None)]
        rules += [(scope, rule) for rule in role["rules"]]
    return rules


BOTH = granted("rbac.yaml", "rbac-cni.yaml")
CNI_ONLY = granted("rbac-cni.yaml")


def allows(scope: str | None, rule: dict, access: Access) -> bool:
    names = rule.get("resourceNames")
    return ((scope is None or scope == access.namespace) and access.group in rule["apiGroups"]
            and access.resource in rule["resources"] and access.verb in rule["verbs"]
            and (not names or access.name in names))


def authorize(access: Access) -> bool:
    return any(allows(scope, rule, access) for scope, rule in BOTH)


CLUSTERS = {
    "flannel": (cn.flannel_nodes, cn.flannel, Cni.FLANNEL),
    "flannel-kube-system": (cn.flannel_nodes, lambda: cn.flannel(namespace="kube-system"), Cni.FLANNEL),
    "cilium": (cn.plain_nodes, cn.cilium, Cni.CILIUM),
    "antrea": (cn.plain_nodes, cn.antrea, Cni.ANTREA),
    "antrea-hashed": (cn.plain_nodes, lambda: cn.antrea(configmap_name="antrea-config-5ct9ktdt77"), Cni.ANTREA),
}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> list[Access]:
    accesses = []
    for name, (nodes, objects, cni) in CLUSTERS.items():
        fake = FakeKube(nodes=nodes(), cni=objects(), calico={}, authorize=authorize).start()
        try:
            kubeconfig = fake.write_kubeconfig(tmp_path_factory.mktemp(name) / "kubeconfig")
            assert discover(connect(str(kubeconfig)), "auto").cni is cni, name
        finally:
            fake.stop()
        accesses += fake.accesses()
    return accesses


def test_the_files_grant_reading_only_and_no_wildcards():
    for _, rule in CNI_ONLY:
        assert set(rule["verbs"]) <= {"get", "list"}, rule
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule


def test_every_cni_is_found_with_only_granted_calls_but_one_expected_refusal(replayed):
    refused = [a for a in replayed if a.resource and not authorize(a)]
    # The hashed Antrea ConfigMap's name cannot be in a rule: its get is refused, and the labelled list finds it.
    assert [(a.verb, a.namespace, a.name) for a in refused] == [("get", "kube-system", "antrea-config-5ct9ktdt77")]


def test_every_permission_the_cni_file_grants_is_used(replayed):
    for scope, rule in CNI_ONLY:
        assert any(allows(scope, rule, a) for a in replayed), f"unused: {scope} {rule}"
