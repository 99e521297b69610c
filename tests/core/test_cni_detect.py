"""Which CNI runs, told by its agent DaemonSet (pure)."""

from __future__ import annotations

import pytest

from tests.fakes import cni_objects as cn
from vxcap.core.cni import Cni, CniError, detect


def test_each_cni_is_found_by_its_agent_with_the_configmap_it_mounts():
    cases = [(cn.flannel(), Cni.FLANNEL, "kube-flannel", "kube-flannel-cfg"),
             (cn.cilium(), Cni.CILIUM, "kube-system", "cilium-config"),
             (cn.antrea(configmap_name="antrea-config-5ct9ktdt77"), Cni.ANTREA, "kube-system", "antrea-config-5ct9ktdt77")]
    for objects, cni, namespace, configmap in cases:
        (agent,) = detect.agents(objects.daemonsets)  # kube-proxy is not a CNI
        assert (agent.cni, agent.namespace, agent.configmap) == (cni, namespace, configmap)


def test_older_per_architecture_flannel_daemonsets_are_flannel():
    (agent,) = detect.agents(cn.flannel(namespace="kube-system", ds_name="kube-flannel-ds-amd64").daemonsets)
    assert agent.cni is Cni.FLANNEL and agent.daemonset == "kube-flannel-ds-amd64"


def test_two_agents_need_cni_to_say_which_carries_pod_traffic():
    found = detect.agents(cn.cilium().daemonsets + cn.antrea().daemonsets)
    with pytest.raises(CniError, match="more than one CNI agent runs: cilium .*antrea .*--cni"):
        detect.choose(found)
    assert detect.choose(found, Cni.ANTREA).cni is Cni.ANTREA


def test_nothing_found_names_what_was_looked_for():
    assert detect.choose(detect.agents([cn.kube_proxy()])) is None
    message = str(detect.not_identified())
    for looked_for in ("kube-flannel-ds", "cilium-config", "antrea-config", "IPPools", "--cni"):
        assert looked_for in message
