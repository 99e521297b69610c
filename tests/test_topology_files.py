"""The lab's deployment files say what topology/k01-lab.yaml says.

k01-lab.yaml is the lab as data; the files under topology/ (containerlab, the
cEOS startup config, Kind, Calico) and the CI workflow deploy that same lab for
real. Nothing generates one from the other, so each check below reads a
deployment file on its own terms (clab `exec` lines, EOS config sections, Kind
and operator resources) and compares it with the parsed lab. The `drift` tests
feed each check a copy with one thing changed and require it to fail, so a
check that could never fail cannot hide here.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Callable
from ipaddress import IPv4Interface, IPv4Network, ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from vxcap.core.capture import CAPTURE_IMAGE
from vxcap.core.lab.spec import LabSpec, lab_from_dict
from vxcap.core.model import Mode
from vxcap.core.plan import resolve_pairs

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "topology"
LAB_FILE = TOPOLOGY / "k01-lab.yaml"
CEOS_CLAB = TOPOLOGY / "topology.clab.yaml"
LINUX_CLAB = TOPOLOGY / "topology-linux-router.clab.yaml"
CEOS_CONFIG = TOPOLOGY / "startup-configs" / "ceos01-startup-config.config"
KIND_CONFIG = TOPOLOGY / "k01-no-cni.yaml"
CALICO_CONFIG = TOPOLOGY / "calico-cni-config" / "custom-resources.yaml"
README = TOPOLOGY / "README.md"
IMAGE_DIR = ROOT / "images" / "netshoot-lite"
WORKFLOW = ROOT / ".github" / "workflows" / "lab.yml"

# What the lab lesson and the deployment pin; a change here is a decision, not drift.
CEOS_IMAGE = "ceos:4.34.0F"
KIND_NODE_IMAGE = "kindest/node:v1.34.11@sha256:"
# kind supports a node image only with the release that built it: what each pinned
# kind release's notes list (https://github.com/kubernetes-sigs/kind/releases).
KIND_RELEASE_IMAGES = {
    "v0.33.0": {
        "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
    },
}
RUNNER = "ubuntu-24.04"
MIN_READY_TIMEOUT_S = 180  # a fresh 2-core runner starts pods slowly; the default 60 s is not enough
# Calico's defaults (FelixConfiguration vxlanVNI / vxlanPort): custom-resources.yaml
# sets neither, so the lab must not promise anything else.
CALICO_DEFAULT_VNI = 4096
CALICO_DEFAULT_PORT = 4789
VXLAN_OVERHEAD = 50
# The operator's name for an IPPool's vxlanMode when the encapsulation is VXLAN.
OPERATOR_ENCAPSULATION = {Mode.CROSS_SUBNET: "VXLANCrossSubnet", Mode.ALWAYS: "VXLAN", Mode.NEVER: "None"}
WORKFLOW_PAIR = "worker,worker3"


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def lab_raw() -> dict[str, Any]:
    return read_yaml(LAB_FILE)


@pytest.fixture(scope="module")
def lab(lab_raw: dict[str, Any]) -> LabSpec:
    return lab_from_dict(lab_raw)


# --- reading the deployment files' own syntax -------------------------------------


def exec_commands(node: dict[str, Any]) -> list[list[str]]:
    return [shlex.split(line) for line in node.get("exec") or []]


def _dev(tokens: list[str]) -> str | None:
    return tokens[tokens.index("dev") + 1] if "dev" in tokens else None


def exec_addresses(node: dict[str, Any]) -> list[tuple[str | None, IPv4Interface]]:
    """(device, address) of every `ip addr add ADDR dev DEV`, in either word order."""
    found = []
    for tokens in exec_commands(node):
        if tokens[:1] == ["ip"] and tokens[1:2] and tokens[1] in ("addr", "address", "a") and tokens[2:3] == ["add"]:
            dev = _dev(tokens)
            addresses = [t for t in tokens[3:] if t != dev and "/" in t]
            assert len(addresses) == 1, f"cannot read the address in {' '.join(tokens)!r}"
            found.append((dev, ip_interface(addresses[0])))
    return found


def exec_routes(node: dict[str, Any]) -> list[tuple[IPv4Network, Any, str | None]]:
    """(destination, gateway, device) of every `ip route add NET via GW [dev DEV]`."""
    found = []
    for tokens in exec_commands(node):
        if tokens[:3] == ["ip", "route", "add"]:
            assert "via" in tokens, f"route without a gateway: {' '.join(tokens)!r}"
            found.append((ip_network(tokens[3]), ip_address(tokens[tokens.index("via") + 1]), _dev(tokens)))
    return found


def link_ends(link: dict[str, Any]) -> list[tuple[str, str]]:
    ends = [tuple(end.split(":", 1)) for end in link["endpoints"]]
    assert len(ends) == 2, f"a link needs two endpoints: {link}"
    return ends


def switch_ports(clab: dict[str, Any], lab: LabSpec) -> tuple[str, dict[str, str]]:
    """The one switch every lab node is cabled to, and the switch port of each node."""
    iface = lab.underlay_iface
    ports: dict[str, str] = {}
    switches = set()
    for link in clab["topology"]["links"]:
        assert link.get("mtu") == lab.underlay_mtu, f"link {link['endpoints']}: mtu {link.get('mtu')}, lab says {lab.underlay_mtu}"
        (a, a_if), (b, b_if) = link_ends(link)
        for node, node_if, other, other_if in ((a, a_if, b, b_if), (b, b_if, a, a_if)):
            if node in {n.name for n in lab.topology.nodes} and node_if == iface:
                assert node not in ports, f"{node}:{iface} is cabled twice"
                ports[node] = other_if
                switches.add(other)
    missing = sorted({n.name for n in lab.topology.nodes} - ports.keys())
    assert not missing, f"lab nodes without a link on {iface}: {missing}"
    assert len(switches) == 1, f"lab nodes are cabled to several switches: {sorted(switches)}"
    return switches.pop(), ports


def eos_sections(text: str) -> dict[str, list[str]]:
    """EOS config as {top-level line: its indented lines}; `!` lines are comments."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("!"):
            continue
        if raw[0].isspace():
            assert current is not None, f"indented line before any section: {raw!r}"
            sections[current].append(raw.strip())
        else:
            current = raw.strip()
            assert current not in sections, f"section {current!r} appears twice"
            sections[current] = []
    return sections


def ceos_interface(port: str) -> str:
    """containerlab's cEOS ethN is EthernetN inside the switch."""
    match = re.fullmatch(r"eth(\d+)", port)
    assert match, f"cEOS port {port!r} is not ethN"
    return f"Ethernet{match.group(1)}"


# --- the checks: each raises AssertionError on the first disagreement --------------


def check_kind_nodes_cabled(clab: dict[str, Any], lab: LabSpec) -> None:
    """Every lab node is an ext-container with its lab address on eth1 and a route to
    every other subnet through its own subnet's gateway."""
    nodes = clab["topology"]["nodes"]
    ext = {name for name, node in nodes.items() if node.get("kind") == "ext-container"}
    assert ext == {n.name for n in lab.topology.nodes}, f"ext-container nodes {sorted(ext)} are not the lab's nodes"
    for node in lab.topology.nodes:
        spec = nodes[node.name]
        addresses = exec_addresses(spec)
        assert addresses == [(lab.underlay_iface, node.underlay)], (
            f"{node.name}: exec gives {addresses}, lab says {node.underlay} on {lab.underlay_iface}"
        )
        own = lab.subnet_of(node)
        expected = {(s.network, own.gateway) for s in lab.topology.subnets if s is not own}
        routes = exec_routes(spec)
        assert {(net, gw) for net, gw, _ in routes} == expected, f"{node.name}: routes {routes}, lab wants {expected}"
        assert all(dev in (None, lab.underlay_iface) for _, _, dev in routes), f"{node.name}: a route leaves by another device: {routes}"


def check_ceos(clab: dict[str, Any], config_text: str, lab: LabSpec) -> None:
    switch, ports = switch_ports(clab, lab)
    node = clab["topology"]["nodes"][switch]
    assert node["kind"] == "arista_ceos" and node["image"] == CEOS_IMAGE, f"switch {switch}: {node}"
    assert (CEOS_CLAB.parent / node["startup-config"]).resolve() == CEOS_CONFIG.resolve()
    sections = eos_sections(config_text)
    assert "ip routing" in sections, "the switch does not route between its SVIs (no `ip routing`)"
    for subnet in lab.topology.subnets:
        assert f"vlan {subnet.vlan}" in sections, f"VLAN {subnet.vlan} is not defined"
        svi = sections.get(f"interface Vlan{subnet.vlan}")
        assert svi is not None, f"no SVI for VLAN {subnet.vlan}"
        assert f"ip address {subnet.gateway}/{subnet.network.prefixlen}" in svi, (
            f"SVI Vlan{subnet.vlan}: {svi}, lab gateway {subnet.gateway}/{subnet.network.prefixlen}"
        )
    for lab_node in lab.topology.nodes:
        interface = ceos_interface(ports[lab_node.name])
        lines = sections.get(f"interface {interface}")
        assert lines is not None, f"{interface} ({lab_node.name}) is not configured"
        vlan = lab.subnet_of(lab_node).vlan
        assert "switchport mode access" in lines and f"switchport access vlan {vlan}" in lines, (
            f"{interface} ({lab_node.name}): {lines}, lab VLAN {vlan}"
        )
        assert f"description Connection to {lab_node.name}" in lines, f"{interface}: description does not name {lab_node.name}"


def check_linux_router(clab: dict[str, Any], lab: LabSpec) -> None:
    """Each subnet is a bridge brVLAN holding the gateway address; each node's port is
    in its subnet's bridge; the router forwards."""
    switch, ports = switch_ports(clab, lab)
    router = clab["topology"]["nodes"][switch]
    assert router["kind"] == "linux" and ":" in router["image"] and not router["image"].endswith(":latest"), (
        f"router image not pinned: {router.get('image')}"
    )
    commands = exec_commands(router)
    bridges = {t[3] for t in commands if t[:3] == ["ip", "link", "add"] and t[4:6] == ["type", "bridge"]}
    master = {t[3]: t[5] for t in commands if t[:3] == ["ip", "link", "set"] and t[4:5] == ["master"]}
    up = {t[3] for t in commands if t[:3] == ["ip", "link", "set"] and t[4:] == ["up"]}
    addresses = {dev: address for dev, address in exec_addresses(router)}
    assert any(t[:1] == ["sysctl"] and "net.ipv4.ip_forward=1" in t for t in commands), "the router does not enable ip_forward"
    for subnet in lab.topology.subnets:
        bridge = f"br{subnet.vlan}"
        assert bridge in bridges and bridge in up, f"{bridge} (VLAN {subnet.vlan}) is not created and up"
        assert addresses.get(bridge) == ip_interface(f"{subnet.gateway}/{subnet.network.prefixlen}"), (
            f"{bridge}: {addresses.get(bridge)}, lab gateway {subnet.gateway}"
        )
    for node in lab.topology.nodes:
        bridge = f"br{lab.subnet_of(node).vlan}"
        assert master.get(ports[node.name]) == bridge, (
            f"{node.name} on {ports[node.name]} is in {master.get(ports[node.name])}, lab says {bridge}"
        )


def check_clab(path: Path, clab: dict[str, Any], lab: LabSpec) -> None:
    """A containerlab file whole: the Kind nodes, then the switch it carries."""
    check_kind_nodes_cabled(clab, lab)
    if path == CEOS_CLAB:
        check_ceos(clab, CEOS_CONFIG.read_text(), lab)
    else:
        check_linux_router(clab, lab)


def kind_node_names(config: dict[str, Any]) -> set[str]:
    """Kind names nodes <cluster>-<role>, then <cluster>-<role>2, 3, ... per role."""
    seen: dict[str, int] = {}
    names = set()
    for node in config["nodes"]:
        role = node["role"]
        seen[role] = seen.get(role, 0) + 1
        names.add(f"{config['name']}-{role}{seen[role] if seen[role] > 1 else ''}")
    return names


def check_kind(config: dict[str, Any], lab: LabSpec) -> None:
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == lab.cluster, f"kind cluster {config['name']!r}, lab cluster {lab.cluster!r}"
    assert config["networking"]["disableDefaultCNI"] is True, "kindnet would be installed: disableDefaultCNI is not true"
    assert ip_network(config["networking"]["podSubnet"]) == lab.topology.pool, (
        f"podSubnet {config['networking']['podSubnet']} is not the pool {lab.topology.pool}"
    )
    assert kind_node_names(config) == {n.name for n in lab.topology.nodes}, f"kind would name the nodes {sorted(kind_node_names(config))}"
    for node in config["nodes"]:
        assert str(node.get("image", "")).startswith(KIND_NODE_IMAGE), (
            f"{node['role']}: image {node.get('image')!r} is not {KIND_NODE_IMAGE}<digest>"
        )


def check_calico(docs: list[dict[str, Any]], lab: LabSpec, lab_raw: dict[str, Any]) -> None:
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs if d}
    assert ("APIServer", "default") in by_kind, "the APIServer resource is missing"
    network = by_kind[("Installation", "default")]["spec"]["calicoNetwork"]
    (pool,) = network["ipPools"]
    block_size = int(lab_raw["pool"]["blockSize"])
    assert {n.block.prefixlen for n in lab.topology.nodes} == {block_size}, "lab blocks disagree with the lab's blockSize"
    assert ip_network(pool["cidr"]) == lab.topology.pool, f"pool cidr {pool['cidr']}, lab {lab.topology.pool}"
    assert pool["blockSize"] == block_size, f"blockSize {pool['blockSize']}, lab {block_size}"
    assert pool["encapsulation"] == OPERATOR_ENCAPSULATION[lab.topology.overlay.mode], (
        f"encapsulation {pool['encapsulation']}, lab vxlanMode {lab.topology.overlay.mode.value}"
    )
    assert pool["natOutgoing"] == "Enabled" and pool["nodeSelector"] == "all()"
    assert network["nodeAddressAutodetectionV4"] == {"interface": lab.underlay_iface}, (
        f"node address autodetection {network['nodeAddressAutodetectionV4']}"
    )
    assert network["mtu"] == lab.topology.overlay.mtu == lab.underlay_mtu - VXLAN_OVERHEAD, (
        f"mtu {network['mtu']}, lab {lab.topology.overlay.mtu}"
    )
    assert (lab.topology.overlay.vni, lab.topology.overlay.port) == (CALICO_DEFAULT_VNI, CALICO_DEFAULT_PORT), (
        "the lab promises a VNI/port that custom-resources.yaml does not configure"
    )


def workflow_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def expand_env(text: str, env: dict[str, Any]) -> str:
    for key, value in env.items():
        text = re.sub(r"\$\{\{\s*env\." + key + r"\s*\}\}|\$\{" + key + r"\}|\$" + key + r"\b", str(value), text)
    return text


def run_commands(step: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """A step's shell lines with the workflow env filled in and the quoting removed."""
    script = expand_env(str(step.get("run", "")), env).replace("\\\n", " ")
    commands = []
    for line in script.splitlines():
        try:
            commands.append(" ".join(shlex.split(line, comments=True)))
        except ValueError:
            commands.append(line.strip())
    return commands


def step_index(steps: list[dict[str, Any]], env: dict[str, Any], fragment: str) -> int:
    for i, step in enumerate(steps):
        if any(fragment in command for command in run_commands(step, env)):
            return i
    raise AssertionError(f"no workflow step runs {fragment!r}")


def check_workflow(workflow: dict[str, Any], lab: LabSpec) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers), f"triggers {triggers}"
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == RUNNER, f"runner {job['runs-on']!r} is not pinned to {RUNNER}"
    env = workflow.get("env", {})
    for tool in ("KIND_VERSION", "KUBECTL_VERSION", "CONTAINERLAB_VERSION", "CALICO_VERSION"):
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", str(env.get(tool, ""))), f"{tool} is not pinned: {env.get(tool)!r}"
    node_minor = re.match(r"kindest/node:(v\d+\.\d+)\.", KIND_NODE_IMAGE).group(1)
    assert env["KUBECTL_VERSION"].startswith(node_minor + "."), f"kubectl {env['KUBECTL_VERSION']} is not the node image's {node_minor}"
    node_images = {node["image"] for node in read_yaml(KIND_CONFIG)["nodes"]}
    assert node_images <= KIND_RELEASE_IMAGES.get(env["KIND_VERSION"], set()), (
        f"kind {env['KIND_VERSION']} was not released with {sorted(node_images)}"
    )
    assert env.get("VXCAP_IMAGE") == CAPTURE_IMAGE, f"CI builds {env.get('VXCAP_IMAGE')!r}, vxcap runs {CAPTURE_IMAGE}"
    steps = workflow_steps(workflow)
    step_index(steps, env, "docker version")  # the engine's version is in the log
    build = step_index(steps, env, f"docker build -t {CAPTURE_IMAGE} {IMAGE_DIR.relative_to(ROOT)}")
    install = step_index(steps, env, "pip install .")
    create = step_index(steps, env, f"kind create cluster --config {KIND_CONFIG.relative_to(ROOT)}")
    load = step_index(steps, env, f"vxcap images load --kind {lab.cluster}")
    run = step_index(steps, env, f"vxcap run --pair {WORKFLOW_PAIR} --out captures")
    assert max(build, install, create) < load < run, f"images must be built and loaded onto the nodes before the run: {(build, install, create, load, run)}"
    order = [
        create,
        step_index(steps, env, f"containerlab deploy -t {LINUX_CLAB.relative_to(ROOT)}"),
        step_index(steps, env, f"kubectl create -f {CALICO_CONFIG.relative_to(ROOT)}"),
        step_index(steps, env, "rollout status ds/calico-node"),
        run,
    ]
    assert order == sorted(order), f"steps out of order: {order}"
    vxcap_run = next(c for s in steps for c in run_commands(s, env) if c.startswith("vxcap run"))
    tokens = vxcap_run.split()
    assert "--ready-timeout" in tokens and float(tokens[tokens.index("--ready-timeout") + 1]) >= MIN_READY_TIMEOUT_S, (
        f"vxcap run waits the default readiness timeout: {vxcap_run!r}"
    )
    (pair,) = resolve_pairs(lab.topology, [tokens[tokens.index("--pair") + 1]])
    a, b = lab.topology.node(pair.a), lab.topology.node(pair.b)
    assert lab.subnet_of(a) != lab.subnet_of(b), f"--pair {pair.a},{pair.b} is not a cross-subnet pair: it would prove no VXLAN"
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@v4")]
    assert any("always()" in str(s.get("if", "")) and "captures" in s["with"]["path"] for s in uploads), "captures/ is not always uploaded"
    reports = [s for s in steps if str(s.get("uses", "")).startswith("dorny/test-reporter@")]
    assert any(
        "always()" in str(s.get("if", "")) and s["with"]["path"].startswith("captures/") and s["with"]["path"].endswith("junit.xml")
        for s in reports
    ), "junit.xml is not always published"


# --- the real files -------------------------------------------------------------------


@pytest.mark.parametrize("clab_file", [CEOS_CLAB, LINUX_CLAB], ids=lambda p: p.name)
def test_clab_nodes_are_the_lab_nodes_addressed_and_routed_as_the_lab_says(clab_file: Path, lab: LabSpec) -> None:
    check_clab(clab_file, read_yaml(clab_file), lab)


def test_ceos_topology_name_and_switch_match_the_lesson(lab: LabSpec) -> None:
    clab = read_yaml(CEOS_CLAB)
    assert clab["name"] == "calico-overlay"
    check_ceos(clab, CEOS_CONFIG.read_text(), lab)


def test_ceos_config_has_both_svis(lab: LabSpec) -> None:
    sections = eos_sections(CEOS_CONFIG.read_text())
    svis = {name for name in sections if name.startswith("interface Vlan")}
    assert svis == {f"interface Vlan{s.vlan}" for s in lab.topology.subnets}


def test_linux_router_topology_plays_the_switch(lab: LabSpec) -> None:
    check_linux_router(read_yaml(LINUX_CLAB), lab)


def test_kind_config_builds_the_lab_cluster(lab: LabSpec) -> None:
    check_kind(read_yaml(KIND_CONFIG), lab)


def test_calico_resources_give_the_lab_overlay(lab: LabSpec, lab_raw: dict[str, Any]) -> None:
    check_calico(list(yaml.safe_load_all(CALICO_CONFIG.read_text())), lab, lab_raw)


def test_workflow_deploys_the_lab_and_runs_the_cross_subnet_pair(lab: LabSpec) -> None:
    check_workflow(read_yaml(WORKFLOW), lab)


def check_readme(readme: str, workflow: dict[str, Any], lab: LabSpec) -> None:
    env = workflow["env"]
    (ci_run,) = [c for s in workflow_steps(workflow) for c in run_commands(s, env) if c.startswith("vxcap run")]
    assert ci_run in readme, f"README does not run {ci_run!r} as CI does"
    assert set(re.findall(r"\bv3\.\d+\.\d+\b", readme)) == {env["CALICO_VERSION"]}, "README and CI install different Calico versions"
    for tool in ("KIND_VERSION", "KUBECTL_VERSION", "CONTAINERLAB_VERSION"):
        assert env[tool] in readme, f"README does not name {tool} {env[tool]} as CI pins it"
    assert RUNNER in readme
    lines = [line.split("#")[0].strip() for line in readme.splitlines()]
    build = f"docker build -t {CAPTURE_IMAGE} ../{IMAGE_DIR.relative_to(ROOT)}"
    load = f"vxcap images load --kind {lab.cluster}"
    create = f"kind create cluster --config {KIND_CONFIG.relative_to(TOPOLOGY)}"
    for needed in (build, create, load):
        assert needed in lines, f"README does not run {needed!r}"
    assert lines.index(build) < lines.index(load) and lines.index(create) < lines.index(load) < lines.index(ci_run), (
        "README loads the image before building it or the cluster, or runs vxcap before loading it"
    )


def test_readme_gives_the_same_steps_and_versions_as_ci(lab: LabSpec) -> None:
    check_readme(README.read_text(), read_yaml(WORKFLOW), lab)


README_DRIFTS = {
    "no image build": ("docker build -t vxcap/netshoot-lite:bookworm-v3 ../images/netshoot-lite", "true"),
    "no image load": ("vxcap images load --kind k01", "true"),
    "old kind": ("v0.33.0", "v0.27.0"),
    "default ready timeout": ("--out captures --ready-timeout 300", "--out captures"),
}


@pytest.mark.parametrize("old,new", README_DRIFTS.values(), ids=README_DRIFTS.keys())
def test_drift_in_readme_is_caught(old: str, new: str, lab: LabSpec) -> None:
    text = README.read_text()
    assert old in text, f"fixture edit found no {old!r}"
    with pytest.raises(AssertionError):
        check_readme(text.replace(old, new), read_yaml(WORKFLOW), lab)


def test_readme_names_the_deployment_files() -> None:
    readme = README.read_text()
    for name in (KIND_CONFIG, LINUX_CLAB, CEOS_CLAB, CALICO_CONFIG):
        assert str(name.relative_to(TOPOLOGY)) in readme, f"README does not use {name.name}"


# --- drift: each check fails when one thing in its file changes -----------------------


def _edit_exec(clab: dict[str, Any], node: str, old: str, new: str) -> None:
    lines = clab["topology"]["nodes"][node]["exec"]
    assert any(old in line for line in lines), f"fixture edit found no {old!r} in {node}"
    clab["topology"]["nodes"][node]["exec"] = [line.replace(old, new) for line in lines]


def _swap_link_ports(clab: dict[str, Any], first: int, second: int) -> None:
    links = clab["topology"]["links"]
    a, b = links[first]["endpoints"], links[second]["endpoints"]
    a[0], b[0] = b[0], a[0]


CLAB_DRIFTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "worker3 address in the other subnet": lambda c: _edit_exec(c, "k01-worker3", "10.10.20.13/24", "10.10.10.13/24"),
    "worker3 prefix": lambda c: _edit_exec(c, "k01-worker3", "10.10.20.13/24", "10.10.20.13/16"),
    "worker gateway": lambda c: _edit_exec(c, "k01-worker", "via 10.10.10.1", "via 10.10.10.254"),
    "worker route dropped": lambda c: c["topology"]["nodes"]["k01-worker"]["exec"].pop(),
    "link mtu": lambda c: c["topology"]["links"][1].update(mtu=9500),
    "node missing": lambda c: c["topology"]["nodes"].pop("k01-worker2"),
}


@pytest.mark.parametrize("drift", CLAB_DRIFTS.values(), ids=CLAB_DRIFTS.keys())
@pytest.mark.parametrize("clab_file", [CEOS_CLAB, LINUX_CLAB], ids=lambda p: p.name)
def test_drift_in_node_cabling_is_caught(clab_file: Path, drift: Callable[[dict[str, Any]], None], lab: LabSpec) -> None:
    clab = copy.deepcopy(read_yaml(clab_file))
    drift(clab)
    with pytest.raises(AssertionError):
        check_clab(clab_file, clab, lab)


CEOS_TEXT_DRIFTS = {
    "worker3 port in VLAN 10": ("   switchport access vlan 20", "   switchport access vlan 10"),
    "SVI 20 address": ("ip address 10.10.20.1/24", "ip address 10.10.20.254/24"),
    "SVI 20 prefix": ("ip address 10.10.20.1/24", "ip address 10.10.20.1/16"),
    "no routing": ("\nip routing\n", "\nno ip routing\n"),
    "VLAN 20 undefined": ("vlan 20\n", "vlan 30\n"),
    "description": ("description Connection to k01-worker2", "description Connection to k01-worker9"),
}


@pytest.mark.parametrize("old,new", CEOS_TEXT_DRIFTS.values(), ids=CEOS_TEXT_DRIFTS.keys())
def test_drift_in_ceos_config_is_caught(old: str, new: str, lab: LabSpec) -> None:
    text = CEOS_CONFIG.read_text()
    assert old in text, f"fixture edit found no {old!r}"
    with pytest.raises(AssertionError):
        check_ceos(read_yaml(CEOS_CLAB), text.replace(old, new, 1), lab)


def test_drift_in_ceos_cabling_is_caught(lab: LabSpec) -> None:
    clab = copy.deepcopy(read_yaml(CEOS_CLAB))
    _swap_link_ports(clab, 1, 3)  # worker onto the VLAN 20 port, worker3 onto VLAN 10
    with pytest.raises(AssertionError):
        check_ceos(clab, CEOS_CONFIG.read_text(), lab)


ROUTER_DRIFTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "br20 address": lambda c: _edit_exec(c, "router01", "10.10.20.1/24 dev br20", "10.10.20.2/24 dev br20"),
    "worker3 port in br10": lambda c: _edit_exec(c, "router01", "eth4 master br20", "eth4 master br10"),
    "no forwarding": lambda c: _edit_exec(c, "router01", "ip_forward=1", "ip_forward=0"),
    "br20 left down": lambda c: _edit_exec(c, "router01", "ip link set br20 up", "ip link set br20 down"),
    "cabling swapped": lambda c: _swap_link_ports(c, 1, 3),
    "image unpinned": lambda c: c["topology"]["nodes"]["router01"].update(image="quay.io/frrouting/frr:latest"),
}


@pytest.mark.parametrize("drift", ROUTER_DRIFTS.values(), ids=ROUTER_DRIFTS.keys())
def test_drift_in_linux_router_is_caught(drift: Callable[[dict[str, Any]], None], lab: LabSpec) -> None:
    clab = copy.deepcopy(read_yaml(LINUX_CLAB))
    drift(clab)
    with pytest.raises(AssertionError):
        check_linux_router(clab, lab)


KIND_DRIFTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "cluster name": lambda k: k.update(name="k02"),
    "kindnet installed": lambda k: k["networking"].update(disableDefaultCNI=False),
    "pod subnet": lambda k: k["networking"].update(podSubnet="10.244.0.0/16"),
    "a worker fewer": lambda k: k["nodes"].pop(),
    "image tag": lambda k: k["nodes"][0].update(image="kindest/node:v1.31.6"),
    "lesson image, older than the kind release": lambda k: k["nodes"][1].update(
        image="kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f"
    ),
}


@pytest.mark.parametrize("drift", KIND_DRIFTS.values(), ids=KIND_DRIFTS.keys())
def test_drift_in_kind_config_is_caught(drift: Callable[[dict[str, Any]], None], lab: LabSpec) -> None:
    config = copy.deepcopy(read_yaml(KIND_CONFIG))
    drift(config)
    with pytest.raises(AssertionError):
        check_kind(config, lab)


def _pool(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return docs[0]["spec"]["calicoNetwork"]["ipPools"][0]


CALICO_DRIFTS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "pool cidr": lambda d: _pool(d).update(cidr="10.244.0.0/16"),
    "block size": lambda d: _pool(d).update(blockSize=24),
    "always VXLAN": lambda d: _pool(d).update(encapsulation="VXLAN"),
    "IPIP": lambda d: _pool(d).update(encapsulation="IPIPCrossSubnet"),
    "node address from eth0": lambda d: d[0]["spec"]["calicoNetwork"].update(nodeAddressAutodetectionV4={"interface": "eth0"}),
    "node address first found": lambda d: d[0]["spec"]["calicoNetwork"].update(nodeAddressAutodetectionV4={"firstFound": True}),
    "mtu": lambda d: d[0]["spec"]["calicoNetwork"].update(mtu=1440),
    "no APIServer": lambda d: d.pop(),
}


@pytest.mark.parametrize("drift", CALICO_DRIFTS.values(), ids=CALICO_DRIFTS.keys())
def test_drift_in_calico_resources_is_caught(drift: Callable[[list[dict[str, Any]]], None], lab: LabSpec, lab_raw: dict[str, Any]) -> None:
    docs = copy.deepcopy([d for d in yaml.safe_load_all(CALICO_CONFIG.read_text()) if d])
    drift(docs)
    with pytest.raises(AssertionError):
        check_calico(docs, lab, lab_raw)


def test_a_lab_vni_calico_is_not_told_about_is_caught(lab_raw: dict[str, Any]) -> None:
    raw = copy.deepcopy(lab_raw)
    raw["overlay"]["vni"] = 4097
    docs = [d for d in yaml.safe_load_all(CALICO_CONFIG.read_text()) if d]
    with pytest.raises(AssertionError):
        check_calico(docs, lab_from_dict(raw), raw)


def _run_step(steps: list[dict[str, Any]], fragment: str) -> dict[str, Any]:
    return next(s for s in steps if fragment in str(s.get("run", "")))


def _replace_in_run(workflow: dict[str, Any], fragment: str, old: str, new: str) -> None:
    step = _run_step(workflow_steps(workflow), fragment)
    assert old in step["run"], f"fixture edit found no {old!r}"
    step["run"] = step["run"].replace(old, new)


WORKFLOW_DRIFTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "same-subnet pair": lambda w: _replace_in_run(w, "vxcap run", "worker,worker3", "worker,worker2"),
    "no --out captures": lambda w: _replace_in_run(w, "vxcap run", "--out captures", "--out out"),
    "cEOS topology in CI": lambda w: w["env"].update(CLAB_TOPOLOGY="topology/topology.clab.yaml"),
    "stock Calico resources": lambda w: _replace_in_run(
        w, "custom-resources", "topology/calico-cni-config/custom-resources.yaml", "custom-resources.yaml"
    ),
    "vxcap before Calico": lambda w: workflow_steps(w).insert(
        0, workflow_steps(w).pop(next(i for i, s in enumerate(workflow_steps(w)) if "vxcap run" in str(s.get("run", ""))))
    ),
    "upload only on success": lambda w: next(s for s in workflow_steps(w) if "upload-artifact" in str(s.get("uses", ""))).pop("if"),
    "no test report": lambda w: workflow_steps(w).remove(next(s for s in workflow_steps(w) if "test-reporter" in str(s.get("uses", "")))),
    "kind unpinned": lambda w: w["env"].update(KIND_VERSION="latest"),
    "kind without the node image": lambda w: w["env"].update(KIND_VERSION="v0.27.0"),
    "runner unpinned": lambda w: next(iter(w["jobs"].values())).update({"runs-on": "ubuntu-latest"}),
    "no docker version": lambda w: workflow_steps(w).remove(_run_step(workflow_steps(w), "docker version")),
    "image not built": lambda w: workflow_steps(w).remove(_run_step(workflow_steps(w), "docker build")),
    "image not loaded": lambda w: workflow_steps(w).remove(_run_step(workflow_steps(w), "vxcap images load")),
    "image loaded after the run": lambda w: workflow_steps(w).append(
        workflow_steps(w).pop(workflow_steps(w).index(_run_step(workflow_steps(w), "vxcap images load")))
    ),
    "another image built": lambda w: w["env"].update(VXCAP_IMAGE="nicolaka/netshoot:v0.13"),
    "default ready timeout": lambda w: _replace_in_run(w, "vxcap run", " --ready-timeout 300", ""),
}


@pytest.mark.parametrize("drift", WORKFLOW_DRIFTS.values(), ids=WORKFLOW_DRIFTS.keys())
def test_drift_in_workflow_is_caught(drift: Callable[[dict[str, Any]], None], lab: LabSpec) -> None:
    workflow = copy.deepcopy(read_yaml(WORKFLOW))
    drift(workflow)
    with pytest.raises(AssertionError):
        check_workflow(workflow, lab)
