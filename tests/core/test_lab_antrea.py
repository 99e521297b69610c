"""The Antrea lab as data: its description, the OVS and ip commands that build it as antrea-agent
would, the checks of what OVS and the kernel report, and its faults.

(That Open vSwitch takes these commands and the wire shows Geneve on 6081 with VNI 0 is
tests/integration/test_antrea_lab.py.)
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.lab_support import LAB_FILE
from vxcap.core.errors import InputError
from vxcap.core.lab import antrea
from vxcap.core.lab.antrea import antrea_description
from vxcap.core.lab.faults import PortMismatch, TunnelBypass, TunnelTypeMismatch, VniMismatch, fault_steps
from vxcap.core.lab.plan import LabNames, NodeDump, lab_steps, node_checks
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Mode, Wire
from vxcap.core.plan import expected_wire

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def antrea_spec(hybrid: bool, port: int = 6081):
    return lab_from_dict(antrea_description(yaml.safe_load(LAB_FILE.read_text()), hybrid, port))


@pytest.fixture(scope="module")
def encap():
    return antrea_spec(False)


@pytest.fixture(scope="module")
def hybrid():
    return antrea_spec(True)


NAMES = LabNames(prefix="vxt", cluster="k01")


def ovs_lines(spec, node):
    return [" ".join(s.argv) for s in antrea.ovs_steps(spec, NAMES, spec.topology.node(node))]


def test_the_description_is_antreas_geneve_on_the_reference_underlay(encap, hybrid):
    ov = encap.topology.overlay
    assert (ov.encapsulation, ov.vni, ov.port, ov.mtu, ov.mode) == ("geneve", 0, 6081, 1450, Mode.ALWAYS)
    assert hybrid.topology.overlay.mode is Mode.CROSS_SUBNET
    assert encap.dataplane == "antrea" and encap.pod_mtu == 1450
    assert {n.vtep_mac for n in encap.topology.nodes} == {"aa:bb:cc:dd:ee:ff"}  # the inner destination
    assert str(encap.pod_on(W).ip) == "10.244.1.2"  # antrea-gw0 takes .1
    assert expected_wire(ov, encap.topology.node(W), encap.topology.node(W2))[0] is Wire.GENEVE
    assert expected_wire(hybrid.topology.overlay, hybrid.topology.node(W), hybrid.topology.node(W2))[0] is Wire.PLAIN


def test_an_antrea_lab_stays_small_enough_for_two_daemons_per_node():
    from vxcap.core.lab.gen import generate_lab

    assert len(lab_from_dict(antrea_description(generate_lab(16, 2), False)).topology.nodes) == 16
    with pytest.raises(InputError, match="at most 16 nodes, not 17"):
        antrea_description(generate_lab(17, 2), False)


def test_encap_mode_and_the_overlay_must_agree():
    data = antrea_description(yaml.safe_load(LAB_FILE.read_text()), True)
    broken = copy.deepcopy(data)
    broken["overlay"]["mode"] = "Always"
    with pytest.raises(InputError, match="trafficEncapMode hybrid is overlay.encapsulation geneve, mode CrossSubnet"):
        lab_from_dict(broken)


def test_the_tunnel_port_is_flow_based_without_checksum_and_dst_port_only_when_not_6081(encap):
    [vsctl] = [line for line in ovs_lines(encap, W) if line.startswith("ovs-vsctl")]
    assert "type=geneve ofport_request=1 options:key=flow options:remote_ip=flow --" in vsctl
    assert "csum" not in vsctl and "dst_port" not in vsctl
    assert "datapath_type=netdev" in vsctl and "add-port br-phy eth1" in vsctl
    assert f"--db=unix:{antrea.OVS_BASE}/vxt-k01-worker/db.sock" in vsctl
    [vsctl7000] = [line for line in ovs_lines(antrea_spec(False, 7000), W) if line.startswith("ovs-vsctl")]
    assert "options:dst_port=7000" in vsctl7000


def test_flows_send_each_peer_into_the_tunnel_with_the_virtual_mac_and_no_vni(encap, hybrid):
    flows = [line for line in ovs_lines(encap, W) if line.startswith("ovs-ofctl add-flow")]
    to_w3 = next(f for f in flows if "nw_dst=10.244.3.0/24" in f)
    assert "mod_dl_dst:aa:bb:cc:dd:ee:ff" in to_w3 and "set_field:10.10.20.13->tun_dst" in to_w3
    assert "tun_id" not in " ".join(flows)
    assert f"unix:{antrea.OVS_BASE}/vxt-k01-worker/br-int.mgmt" in to_w3
    # hybrid: no tunnel flow to W2 (same subnet), its pods reached through the host's route instead
    lines = ovs_lines(hybrid, W)
    assert not any("nw_dst=10.244.2.0/24" in f for f in lines)
    assert "ip route add 10.244.2.0/24 via 10.10.10.12 dev br-phy" in lines
    assert "ip route add 10.244.3.0/24 via 10.244.3.1 dev antrea-gw0 onlink" in lines


def test_the_kernel_part_builds_no_calico_device(encap):
    lines = [" ".join(s.argv) for s in lab_steps(encap, NAMES) if s.netns == "vxt-k01-worker"]
    assert not any("vxlan" in line or "cali" in line for line in lines)
    assert any("arp_ignore=8" in line and "eth1" in line for line in lines)


def _ovs_view(spec, node, vni=None, port=None):
    flows = [antrea.tunnel_flow(o, antrea.gateway_mac(node), vni).replace(",actions=", " actions=")
             for o in spec.topology.nodes if o.name != node]
    options = {"key": "flow", "remote_ip": "flow", **({"dst_port": str(port)} if port else {})}
    return {"daemons": {"ovsdb-server": 10, "ovs-vswitchd": 11},
            "interfaces": {"antrea-tun0": {"type": "geneve", "options": options}}, "flows": flows}


def test_ovs_checks_name_the_vni_the_port_and_a_stopped_daemon(encap):
    node = encap.topology.node(W)
    assert all(c.ok for c in antrea.ovs_checks(encap, node, _ovs_view(encap, W)))
    bad = {c.name: c.detail for c in antrea.ovs_checks(encap, node, _ovs_view(encap, W, vni=5)) if not c.ok}
    assert bad == {f"flow 10.244.{i}.0/24": "sets VNI 5 (want 0)" for i in (0, 2, 3)}
    bad = {c.name: c.detail for c in antrea.ovs_checks(encap, node, _ovs_view(encap, W, port=7000)) if not c.ok}
    assert bad == {"antrea-tun0": "port=7000 (want 6081)"}
    view = _ovs_view(encap, W)
    view["daemons"]["ovs-vswitchd"] = None
    assert [c.name for c in antrea.ovs_checks(encap, node, view) if not c.ok] == ["ovs-vswitchd"]
    dump = NodeDump(links=[], routes=[], fdb=[], pod_links=[], pod_routes=[], ovs=None)
    assert "ovs" in {c.name for c in node_checks(encap, NAMES, W, dump) if not c.ok}


def test_dump_flows_lines_lose_their_counters():
    text = ("NXST_FLOW reply (xid=0x4):\n cookie=0x0, duration=3.1s, table=0, n_packets=4, n_bytes=392, "
            "idle_age=1, priority=200,ip,nw_dst=10.244.3.0/24 actions=mod_dl_dst:aa:bb:cc:dd:ee:ff,output:1\n")
    assert antrea.parse_flows(text) == ["priority=200,ip,nw_dst=10.244.3.0/24 actions=mod_dl_dst:aa:bb:cc:dd:ee:ff,"
                                        "output:1"]


def test_faults_are_ovs_commands_on_the_one_node(encap, hybrid):
    vni = [" ".join(s.argv) for s in fault_steps(encap, NAMES, VniMismatch(W2, 5))]
    assert len(vni) == 3 and all("set_field:0x5->tun_id" in line and "vxt-k01-worker2/" in line for line in vni)
    [port] = [" ".join(s.argv) for s in fault_steps(encap, NAMES, PortMismatch(W, 4789))]
    assert port.endswith("set interface antrea-tun0 options:dst_port=4789")
    plain = [" ".join(s.argv) for s in fault_steps(encap, NAMES, TunnelBypass(W, W3))]
    assert plain[0].startswith("ovs-ofctl --strict del-flows") and "nw_dst=10.244.3.0/24" in plain[0]
    assert plain[1] == "ip route replace 10.244.3.0/24 via 10.10.10.1 dev br-phy"
    with pytest.raises(InputError, match="already sends k01-worker2's pods plain"):
        fault_steps(hybrid, NAMES, TunnelBypass(W, W2))
    [retype] = [" ".join(s.argv) for s in fault_steps(encap, NAMES, TunnelTypeMismatch(W, "vxlan"))]
    assert retype.endswith("set interface antrea-tun0 type=vxlan")
    with pytest.raises(InputError, match="other than the lab's"):
        fault_steps(encap, NAMES, TunnelTypeMismatch(W, "geneve"))
