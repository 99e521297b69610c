"""`vxcap topology --cni ...` and `vxcap run --cni ...` through click, against the fake API over HTTP."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.fakes import cni_objects as cn
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus


def topology(fake, *args: str):
    return CliRunner().invoke(cli, ["topology", "--kubeconfig", str(fake.kubeconfig), *args], terminal_width=250)


def paths(result) -> dict[tuple[str, str], dict]:
    assert result.exit_code == 0, result.output
    return {(p["src"], p["dst"]): p for p in json.loads(result.output)["paths"]}


def test_flannel_vxlan_in_kube_system_with_its_vni_and_port(start_fake_kube):
    objects = cn.flannel({"Type": "vxlan", "VNI": 4, "Port": 4789}, namespace="kube-system")
    fake = start_fake_kube(nodes=cn.flannel_nodes(vni=4), cni=objects, calico={})
    result = topology(fake, "--cni", "flannel", "--json")
    data = json.loads(result.output)
    assert data["cni"] == "flannel" and data["source"] == "ConfigMap kube-system/kube-flannel-cfg"
    assert data["overlay"]["device"] == "flannel.4"
    (fmt,) = paths(result)[("k01-worker", "k01-worker3")]["formats"]
    assert (fmt["encap"], fmt["port"], fmt["vni"]) == ("vxlan", 4789, 4)
    assert any("kube-system" in note for note in data["notes"])


def test_flannel_direct_routing_is_shown_as_decided_by_the_route(start_fake_kube):
    fake = start_fake_kube(nodes=cn.flannel_nodes(), cni=cn.flannel({"Type": "vxlan", "DirectRouting": True}), calico={})
    result = topology(fake)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "flannel vxlan, DirectRouting: VNI 1, UDP 8472" in text
    assert "plain or vxlan, UDP 8472, VNI 1" in text and "ip route get 10.10.20.13 on k01-worker" in text


def test_cilium_old_tunnel_key_states_identity_vni_and_zero_checksum(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.cilium(cn.OLD_CILIUM_CONFIG), calico={})
    result = topology(fake, "--json")  # auto
    data = json.loads(result.output)
    assert data["cni"] == "cilium"
    (fmt,) = paths(result)[("k01-worker3", "k01-worker")]["formats"]
    assert fmt == {"encap": "vxlan", "port": 8472, "vni": "sender-identity", "zero_udp_checksum": True,
                   "device": "cilium_vxlan", "text": "vxlan, UDP 8472, VNI = sender's identity, UDP checksum 0"}
    assert any("removed in Cilium 1.15" in n for n in data["notes"])


def test_cilium_native_routing_is_plain(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.cilium({**cn.CILIUM_CONFIG, "routing-mode": "native"}), calico={})
    assert {tuple(p["expected"]) for p in paths(topology(fake, "--json")).values()} == {("plain",)}


@pytest.mark.parametrize("mode, tunnel, expected", [("encap", "geneve", ("geneve", 6081)), ("encap", "vxlan", ("vxlan", 4789)),
                                                    ("noEncap", "geneve", ("plain", None))])
def test_antrea_modes(start_fake_kube, mode, tunnel, expected):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.antrea(mode, tunnel), calico={})
    found = {(p["formats"][0]["encap"], p["formats"][0]["port"]) for p in paths(topology(fake, "--cni", "antrea", "--json")).values()}
    assert found == {expected}


def test_antrea_hashed_configmap_through_the_cli(start_fake_kube):
    objects = cn.antrea(configmap_name="antrea-config-5ct9ktdt77", agent_conf=cn.OLD_ANTREA_AGENT_CONF)
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=objects, calico={})
    result = topology(fake)
    assert result.exit_code == 0, result.output
    assert "antrea-config-5ct9ktdt77" in result.output and "geneve, UDP 6081, VNI 0" in result.output


def test_calico_is_unchanged_and_says_it_is_calico(start_fake_kube):
    result = topology(start_fake_kube(), "--json")
    data = json.loads(result.output)
    assert data["cni"] == "calico" and data["overlay"]["mode"] == "CrossSubnet"
    assert paths(result)[("k01-worker", "k01-worker3")]["expected"] == "vxlan"


def test_an_unidentified_cni_is_one_line_and_exit_2(start_fake_kube):
    fake = start_fake_kube(nodes=cn.plain_nodes(), cni=cn.CniObjects(daemonsets=[cn.kube_proxy()]), calico={})
    result = topology(fake)
    assert result.exit_code == ExitStatus.USAGE
    assert "no CNI identified: looked for" in result.output and "Traceback" not in result.output


def test_cni_is_for_a_cluster_not_the_lab():
    result = CliRunner().invoke(cli, ["topology", "--lab", "--cni", "flannel"])
    assert result.exit_code == ExitStatus.USAGE and "--cni is for a cluster" in result.output


def test_coverage_is_refused_for_another_cni(start_fake_kube):
    fake = start_fake_kube(nodes=cn.flannel_nodes(), cni=cn.flannel(), calico={})
    result = topology(fake, "--coverage")
    assert result.exit_code == ExitStatus.USAGE and "--coverage plans Calico's wire formats only" in result.output


@pytest.mark.parametrize(("objects", "nodes", "says"), [
    (lambda: cn.flannel({"Type": "wireguard"}), lambda: cn.flannel_nodes("wireguard"),
     "error: ConfigMap kube-flannel/kube-flannel-cfg: Flannel's wireguard backend is not one vxcap run judges yet "
     "(`vxcap topology --cni flannel` states what it promises)"),
    (lambda: cn.antrea("encap", "gre"), cn.underlay_nodes,
     "error: ConfigMap kube-system/antrea-config: Antrea's tunnelType gre is not one vxcap run judges yet "
     "(`vxcap topology --cni antrea` states what it promises)"),
    (lambda: cn.cilium({**cn.CILIUM_CONFIG, "enable-wireguard": "true"}), cn.underlay_nodes,
     "error: ConfigMap kube-system/cilium-config: Cilium's enable-wireguard is not one vxcap run judges yet "
     "(`vxcap topology --cni cilium` states what it promises)"),
], ids=["flannel-wireguard", "antrea-gre", "cilium-wireguard"])
def test_run_refuses_what_it_cannot_judge_in_one_line_before_making_anything(start_fake_kube, tmp_path, objects, nodes, says):
    fake = start_fake_kube(nodes=nodes(), cni=objects(), calico={})
    result = CliRunner().invoke(cli, ["run", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig),
                                      "--cni", "auto", "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [says]
    assert fake.kube.requested("POST", r".*") == [] and not (tmp_path / "out").exists()


def test_run_cni_auto_on_a_calico_cluster_goes_on_to_run(start_fake_kube, tmp_path):
    # Pods that cannot start end the run early; what matters is that it started, not refused.
    nodes = ("k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3")
    fake = start_fake_kube(node_images={node: set() for node in nodes})
    result = CliRunner().invoke(cli, ["run", "--pair", "worker,worker3", "--capture", "pod", "--cni", "auto",
                                      "--kubeconfig", str(fake.kubeconfig), "--out", str(tmp_path / "out")])
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert "judges Calico overlays only" not in result.output
    assert fake.kube.requested("GET", "/apis/apps/v1/daemonsets")  # it looked before going on


def test_a_cilium_run_whose_pods_get_no_endpoint_stops_before_capturing(start_fake_kube, tmp_path):
    """No agent writes the test pods' CiliumEndpoints: their VNIs are unknown, so nothing is captured or judged."""
    fake = start_fake_kube(nodes=cn.underlay_nodes(), cni=cn.cilium(endpoints=[]), calico={})
    result = CliRunner().invoke(cli, ["run", "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig),
                                      "--cni", "auto", "--capture", "pod", "--ready-timeout", "1",
                                      "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["flows"] == [] and not list(run_dir.glob("*.pcap"))
    assert any("no CiliumEndpoint with an identity for test pod(s) vxcap-" in e and "after 1s" in e
               for e in report["errors"]), report["errors"]
    assert fake.kube.pods_in("vxcap") == []
    execs = [r.query.get("command", []) for r in fake.kube.requests if r.path.endswith("/exec")]
    assert execs and not [argv for argv in execs if "tcpdump" in argv]  # tables read, no capture started
