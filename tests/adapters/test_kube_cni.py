"""Finding and reading each CNI through the real kubernetes client, over HTTP, against the fake API."""

from __future__ import annotations

import pytest

from tests.fakes import cni_objects as cn
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from vxcap.adapters.kube.cni import discover, identify
from vxcap.adapters.kube.connection import connect
from vxcap.adapters.kube.errors import KubeError
from vxcap.core.cni import Cni, Encap


def conn_to(fake):
    return connect(str(fake.kubeconfig))


def test_flannel_in_kube_flannel(start_fake_kube):
    fake = start_fake_kube(nodes=cn.flannel_nodes(), cni=cn.flannel(), calico={})
    found = discover(conn_to(fake), "auto")
    assert found.cni is Cni.FLANNEL and found.calico is None
    assert found.other.source == "ConfigMap kube-flannel/kube-flannel-cfg"
    assert {p.expected[0].encap for p in found.other.paths} == {Encap.VXLAN}
    # The ConfigMap was read by the name the DaemonSet mounts, not searched for.
    assert fake.kube.requested("GET", "/api/v1/namespaces/kube-flannel/configmaps/kube-flannel-cfg")
    assert not fake.kube.requested("GET", r"/api/v1/namespaces/[^/]+/configmaps")


def test_flannel_in_kube_system_forced_without_its_daemonset(start_fake_kube):
    objects = cn.flannel(namespace="kube-system")
    objects.daemonsets = [cn.kube_proxy()]  # k3s-style: flanneld is not a DaemonSet
    fake = start_fake_kube(nodes=cn.flannel_nodes(), cni=objects, calico={})
    found = discover(conn_to(fake), "flannel")
    assert found.other.source == "ConfigMap kube-system/kube-flannel-cfg"
    # kube-flannel was asked first, as the current manifest installs it there.
    asked = [r.path for r in fake.kube.requests if "/configmaps/" in r.path]
    assert asked == ["/api/v1/namespaces/kube-flannel/configmaps/kube-flannel-cfg",
                     "/api/v1/namespaces/kube-system/configmaps/kube-flannel-cfg"]
    # And auto finds it the same way when no agent DaemonSet says so.
    assert discover(conn_to(fake), "auto").cni is Cni.FLANNEL


def test_cilium_with_the_old_tunnel_key_and_its_endpoints(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.cilium(cn.OLD_CILIUM_CONFIG), calico={})
    found = discover(conn_to(fake), "auto")
    assert found.cni is Cni.CILIUM
    assert found.other.settings["protocol"] == "vxlan" and found.other.settings["port"] == 8472
    assert found.other.settings["identities"]["kube-system/coredns-668d6bf9bc-2xkqz"] == 17284
    assert any("old `tunnel: vxlan`" in n for n in found.notes)


def test_cilium_without_the_endpoint_crd_still_states_its_expectations(start_fake_kube):
    objects = cn.cilium()
    objects.ciliumendpoints = None  # cilium.io answers 404
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=objects, calico={})
    found = discover(conn_to(fake), "cilium")
    assert found.other.settings["identities"] == {} and any("no CiliumEndpoint" in n for n in found.notes)


def test_antrea_with_a_hash_suffixed_configmap(start_fake_kube):
    objects = cn.antrea(configmap_name="antrea-config-5ct9ktdt77", agent_conf=cn.OLD_ANTREA_AGENT_CONF)
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=objects, calico={})
    found = discover(conn_to(fake), "auto")
    assert found.cni is Cni.ANTREA and found.other.source == "ConfigMap kube-system/antrea-config-5ct9ktdt77"
    # Without the DaemonSet, the hashed name is found among kube-system's Antrea ConfigMaps.
    objects.daemonsets = [cn.kube_proxy()]
    found = discover(conn_to(fake), "antrea")
    assert found.other.source == "ConfigMap kube-system/antrea-config-5ct9ktdt77"


def test_calico_is_still_found_when_no_other_cni_is(fake_kube_calico):
    found = discover(conn_to(fake_kube_calico), "auto")
    assert found.cni is Cni.CALICO and found.other is None
    assert found.calico.topology.overlay.port == 4789


@pytest.fixture
def fake_kube_calico(start_fake_kube):
    return start_fake_kube()


def test_a_cluster_with_no_cni_vxcap_knows_gets_one_line_naming_what_was_looked_for(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.CniObjects(daemonsets=[cn.kube_proxy()]), calico={})
    with pytest.raises(KubeError, match=r"no CNI identified: looked for DaemonSets calico-node, kube-flannel-ds") as err:
        discover(conn_to(fake), "auto")
    assert "\n" not in str(err.value)


def test_a_forced_cni_that_is_not_there_says_what_was_missing(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.flannel(), calico={})
    with pytest.raises(KubeError, match="--cni antrea: no ConfigMap kube-system/antrea-config"):
        discover(conn_to(fake), "antrea")


def test_not_allowed_to_list_daemonsets_falls_back_on_the_configmap(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.cilium(), calico={}, forbidden={("list", "daemonsets")})
    found = discover(conn_to(fake), "auto")
    assert found.cni is Cni.CILIUM and any("not allowed to list DaemonSets" in n for n in found.notes)


def test_identify_for_run(start_fake_kube):
    assert identify(conn_to(start_fake_kube(nodes=cn.flannel_nodes(), cni=cn.flannel(), calico={}))) is Cni.FLANNEL
    assert identify(conn_to(start_fake_kube())) is Cni.CALICO
