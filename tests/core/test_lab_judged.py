"""What a run of each lab data plane plans (core/lab/encap_topology through core/plan.py), and the
manifest carrying an IPv6-only run with each family's probe counts: pure, no lab built."""

from __future__ import annotations

from ipaddress import ip_address

import yaml

from tests.lab_support import LAB_FILE, dataplane_spec, k01_spec
from vxcap.core.lab.encap_topology import lab_pods, lab_topology
from vxcap.core.lab.gen import with_overlay
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.manifest import ProbeCount, manifest_dict, parse_manifest
from vxcap.core.model import Mode, Pair, Wire
from vxcap.core.plan import plan

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def expectations(spec, pairs=((W, W3), (W, W2))):
    topology = lab_topology(spec)
    pods = {pod.node: pod for pod in lab_pods(spec)}
    return topology, pods, {(e.src_node, e.dst_node, e.family): e for e in plan(topology, tuple(Pair(*p) for p in pairs), pods)}


def test_the_vxlan_lab_is_judged_as_before():
    spec = k01_spec()
    assert lab_topology(spec) == spec.topology and lab_pods(spec) == spec.pods


def test_dual_expects_each_family_over_its_own_underlay():
    spec = dataplane_spec("dual")
    topology, pods, found = expectations(spec)
    assert topology.overlay.mode6 is Mode.CROSS_SUBNET and topology.overlay.mtu6 == 1430
    assert pods[W].ip6 == spec.node6(W).pod_ip
    assert len(found) == 8
    six = found[(W, W3, 6)]
    assert (six.expected, six.outer_dst, six.inner_dst_mac) == (Wire.VXLAN, spec.node6(W3).address, spec.node6(W3).vtep_mac)
    assert six.dst_ip == spec.node6(W3).pod_ip
    assert found[(W, W2, 6)].expected is Wire.PLAIN and found[(W, W3, 4)].expected is Wire.VXLAN


def test_vxlan6_expects_nothing_of_ipv4():
    _, _, found = expectations(dataplane_spec("vxlan6"))
    assert {key[2] for key in found} == {6} and len(found) == 4


def test_wireguard_expects_the_tunnel_between_every_pair_on_its_port():
    _, _, found = expectations(dataplane_spec("wireguard"))
    assert {e.expected for e in found.values()} == {Wire.WIREGUARD}
    assert {e.port for e in found.values()} == {51820}


def test_ipip_expects_ip_in_ip_across_subnets():
    spec = lab_from_dict(with_overlay(yaml.safe_load(LAB_FILE.read_text()), "ipip"))
    _, _, found = expectations(spec)
    assert found[(W, W3, 4)].expected is Wire.IPIP and found[(W, W2, 4)].expected is Wire.PLAIN


def test_the_manifest_keeps_an_ipv6_only_overlay_and_each_familys_probe_counts():
    spec = dataplane_spec("vxlan6")
    topology = lab_topology(spec)
    pods = {pod.node: pod for pod in lab_pods(spec) if pod.node in (W, W3)}
    probes = [ProbeCount(W, W3, 3, 3, family=6), ProbeCount(W3, W, 3, 1, family=6)]
    manifest = parse_manifest(manifest_dict(topology, pods, (Pair(W, W3),), {}, probes=probes))
    assert manifest.topology.overlay.ipv4 is False and manifest.topology.overlay.families() == (6,)
    assert manifest.received(W3, W, 6) == 1 and manifest.sent(W3, W, 6) == 3 and manifest.sent(W3, W) is None
    assert manifest.pods_by_node()[W].ip6 == ip_address(str(spec.node6(W).pod_ip))
    assert {e.family for e in plan(manifest.topology, manifest.pairs, manifest.pods_by_node())} == {6}
