"""deploy/rbac.yaml against what vxcap really asks the API server for.

The fake API server authorizes every request with the file's rules (bound to the
ServiceAccount the way Kubernetes RBAC binds them) while vxcap runs everything
it does: so a call the file does not allow fails the run, and a permission no
call uses fails the last test.
"""

from __future__ import annotations

import copy
import io
import threading
from pathlib import Path

import pytest
import yaml

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapWriter

from tests.fakes import calico_objects as co
from tests.fakes.kube_api import Access, CommandRuntime, Fate, FakeKube
from vxcap.adapters.kube import KubeCluster, KubeError

RBAC = Path(__file__).resolve().parents[1] / "deploy" / "rbac.yaml"
DISCOVERY_PATHS = {"/version", "/api", "/apis"}  # open to every authenticated user (system:discovery)


def documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def one(kind: str) -> list[dict]:
    return [d for d in documents() if d["kind"] == kind]


SERVICE_ACCOUNT = one("ServiceAccount")[0]
NAMESPACE = SERVICE_ACCOUNT["metadata"]["namespace"]


def _binds_us(binding: dict) -> bool:
    return any(
        s.get("kind") == "ServiceAccount"
        and s.get("name") == SERVICE_ACCOUNT["metadata"]["name"]
        and s.get("namespace") == NAMESPACE
        for s in binding.get("subjects") or []
    )


def granted_rules() -> list[tuple[str | None, dict]]:
    """(namespace the rule is limited to, or None for cluster-wide; the rule)."""
    roles = {("ClusterRole", r["metadata"]["name"]): r for r in one("ClusterRole")}
    roles.update({("Role", r["metadata"]["name"]): r for r in one("Role")})
    rules = []
    for binding in one("ClusterRoleBinding") + one("RoleBinding"):
        if not _binds_us(binding):
            continue
        ref = binding["roleRef"]
        role = roles[(ref["kind"], ref["name"])]
        scope = None if binding["kind"] == "ClusterRoleBinding" else binding["metadata"]["namespace"]
        if ref["kind"] == "Role":
            assert role["metadata"]["namespace"] == scope
        rules += [(scope, rule) for rule in role["rules"]]
    return rules


def rule_allows(scope: str | None, rule: dict, access: Access) -> bool:
    resource = f"{access.resource}/{access.subresource}" if access.subresource else access.resource
    return (
        (scope is None or scope == access.namespace)
        and access.group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and access.verb in rule.get("verbs", [])
    )


def authorize(access: Access) -> bool:
    return any(rule_allows(scope, rule, access) for scope, rule in granted_rules())


def test_the_file_grants_no_wildcards_and_binds_the_service_account():
    for _, rule in granted_rules():
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
    kinds = {d["kind"] for d in documents()}
    assert kinds == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert all(_binds_us(b) for b in one("ClusterRoleBinding") + one("RoleBinding"))


def test_the_namespace_admits_capture_pods():
    (namespace,) = one("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_nothing_is_granted_outside_the_namespace_but_reading():
    for scope, rule in granted_rules():
        if scope is None:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_pods_exec_and_logs_are_granted_in_the_namespace_only():
    cluster_wide = [rule for scope, rule in granted_rules() if scope is None]
    assert not any(r for r in cluster_wide if {"pods", "pods/exec", "pods/log"} & set(r["resources"]))


# ---------------------------------------------------------------- replaying vxcap's calls


def _pcap() -> bytes:
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, linktype=1, sync=True)
    writer.write(Ether() / IP(src="10.10.10.11", dst="10.10.20.13") / UDP(dport=4789) / VXLAN(vni=4096) / Ether() / IP() / ICMP())
    writer.flush()
    return buffer.getvalue()


class Tcpdump:
    def __init__(self) -> None:
        self.interrupted = threading.Event()

    def run(self, pod, argv, io):
        io.stderr("listening on eth1, link-type EN10MB (Ethernet), snapshot length 256 bytes\n")
        io.stdout(_pcap())
        self.interrupted.wait(10)
        io.stderr("1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n")
        return 0

    def pkill(self, pod, argv, io):
        self.interrupted.set()
        return 0


def _ping(pod, argv, io):
    io.stdout(f"--- {argv[-1]} ping statistics ---\n2 packets transmitted, 2 received, 0% packet loss, time 201ms\n")
    return 0


def _json(pod, argv, io):
    io.stdout("[]")
    return 0


def _fake(tmp: Path, **options) -> tuple[FakeKube, KubeCluster]:
    (namespace,) = one("Namespace")
    fake = FakeKube(authorize=authorize, **options).start()
    fake.namespaces[NAMESPACE] = copy.deepcopy(namespace)  # applied by the admin with the file
    kubeconfig = fake.write_kubeconfig(tmp / "kubeconfig")
    return fake, KubeCluster(kubeconfig=str(kubeconfig), namespace=NAMESPACE)


def _whole_run(tmp: Path, group: str) -> FakeKube:
    tcpdump = Tcpdump()
    runtime = CommandRuntime({"ping": _ping, "ip": _json, "bridge": _json, "tcpdump": tcpdump.run, "pkill": tcpdump.pkill})
    fake, kube = _fake(tmp, calico_groups=(group,), runtime=runtime)
    try:
        kube.discover()
        pods = kube.create_test_pods("r1", ("k01-worker", "k01-worker3"))
        capture = kube.start_capture("k01-worker", out_path=tmp / "w.pcap", run_id="r1")
        kube.ping(pods["k01-worker"], pods["k01-worker3"].ip, count=2)
        capture.stop(timeout=5)
        kube.node_tables("k01-worker", run_id="r1")
        kube.delete_run("r1")
        kube.cleanup()
    finally:
        fake.stop()
    return fake


def _pods_that_will_not_start(tmp: Path) -> FakeKube:
    fates = {"k01-worker": Fate(kind="pending"), "k01-worker3": Fate(kind="failed", log=b"boom\n")}
    fake, kube = _fake(tmp, fates=fates)
    try:
        with pytest.raises(KubeError, match="boom"):
            kube.create_test_pods("r1", ("k01-worker3",), timeout=5)
        with pytest.raises(KubeError, match="FailedScheduling"):
            kube.create_test_pods("r2", ("k01-worker",), timeout=0.5)
    finally:
        fake.stop()
    return fake


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> list[Access]:
    """Every access vxcap made: a whole run on a v1 and on a v3-only cluster, and failing pods
    explained. The fake refuses (403) what the file does not grant, failing the run itself."""
    fakes = [
        _whole_run(tmp_path_factory.mktemp("v1"), co.V1),
        _whole_run(tmp_path_factory.mktemp("v3"), co.V3),
        _pods_that_will_not_start(tmp_path_factory.mktemp("failing")),
    ]
    return [access for fake in fakes for access in fake.accesses()]


def test_every_call_vxcap_makes_is_granted(replayed):
    for access in replayed:
        if access.resource is None:
            assert access.path in DISCOVERY_PATHS, access
        else:
            assert authorize(access), access


def test_every_permission_granted_is_one_vxcap_uses(replayed):
    for scope, rule in granted_rules():
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                base, _, sub = resource.partition("/")
                for verb in rule["verbs"]:
                    assert any(
                        a.group == group and a.resource == base and a.subresource == sub and a.verb == verb
                        and (scope is None or a.namespace == scope)
                        for a in replayed
                    ), f"{verb} {resource} in API group {group or 'core'!r} is granted but never used"
