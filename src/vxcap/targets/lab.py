"""The embedded lab as a run target: network namespaces and the kernel's VXLAN.

The lab's pods exist as long as the lab does, so provisioning only looks them
up. A run that finds no lab builds one and removes it again afterwards (unless
asked to keep it), so `vxcap run --lab` leaves the machine as it found it.

A lab remembers the description it was built from (/run/vxcap, gone at reboot
like the namespaces themselves), so `status`, `down` and `run` act on the lab
that exists, also when it was generated with `--nodes/--subnets`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path

import yaml

from vxcap.core import rundir
from vxcap.core.errors import InputError, VxcapError
from vxcap.core.lab.encap_topology import lab_pods, lab_topology
from vxcap.core.lab.gen import generate_lab, with_overlay
from vxcap.core.lab.spec import LabSpec, lab_from_dict
from vxcap.core.model import Pod, Topology

DEFAULT_PREFIX = "vxcap"
STATE_DIR = Path(os.environ.get("VXCAP_STATE_DIR", "/run/vxcap"))


@dataclass(frozen=True)
class LabSource:
    spec: LabSpec
    text: str  # the YAML it was read from, kept to remember the lab by
    origin: str


def _parse(text: str, where: str) -> LabSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{where} is not YAML: {str(err).splitlines()[0]}") from None
    return lab_from_dict(data)


def reference_lab() -> LabSource:
    text = resources.files("vxcap").joinpath("labs/k01.yaml").read_text()
    return LabSource(_parse(text, "the embedded lab file"), text, "the reference lab (topology/k01-lab.yaml)")


def _from_file(path: Path) -> LabSource:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise InputError(f"cannot read lab file {path}: {err.strerror}") from None
    return LabSource(_parse(text, str(path)), text, str(path))


class LabMemory:
    """Which description the lab with this prefix was built from."""

    def __init__(self, prefix: str, directory: Path = STATE_DIR) -> None:
        self.path = directory / f"lab-{prefix}.yaml"

    def recall(self) -> LabSource | None:
        try:
            text = self.path.read_text()
        except OSError:
            return None
        try:
            return LabSource(_parse(text, str(self.path)), text, f"the lab built earlier ({self.path})")
        except InputError:
            return None

    def remember(self, source: LabSource) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.write_text(source.text)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


def choose_lab(
    prefix: str, lab_file: Path | None = None, nodes: int | None = None, subnets: int | None = None,
    overlay: str | None = None, cni: str | None = None, direct_routing: bool | None = None,
    ipip_mode: str | None = None,
    encap_mode: str | None = None,
) -> LabSource:
    """What the user named, else the lab that exists, else the reference lab.

    `overlay` (vxlan | vxlan6 | dual | wireguard | wireguard6 | ipip) rebuilds that description for one of
    Calico's data planes; the text the lab remembers then holds every IPv6 address in full.
    `cni` "flannel" rebuilds it as Flannel's vxlan backend (`direct_routing`: DirectRouting on;
    None keeps a Flannel lab that exists as it is, else off, Flannel's default). `ipip_mode`
    ("always" | "cross-subnet") goes with overlay ipip; None keeps an ipip lab that exists as it is,
    else CrossSubnet.
    """
    if ipip_mode is not None and overlay != "ipip":
        raise InputError("--ipip-mode is the ipip data plane's: add --overlay ipip")
    if cni == "antrea":  # encap_mode: trafficEncapMode encap | hybrid (None keeps an Antrea lab that exists)
        from vxcap.targets.lab_antrea import antrea_lab

        return antrea_lab(prefix, lab_file, nodes, subnets, overlay, encap_mode)
    if cni not in (None, "calico", "flannel", "cilium", "auto"):
        raise InputError(f"the embedded lab builds Calico's, Flannel's, Cilium's and Antrea's data planes, not {cni}'s "
                         f"(`vxcap topology --cni {cni}` states what it promises)")
    if direct_routing is not None and cni != "flannel":
        raise InputError("--direct-routing/--no-direct-routing is Flannel's: add --cni flannel")
    if cni == "flannel":
        if overlay not in (None, "vxlan"):
            raise InputError(f"--overlay {overlay} is one of Calico's data planes; --cni flannel builds Flannel's vxlan")
        return _flannel_lab(prefix, lab_file, nodes, subnets, direct_routing)
    if cni == "cilium":
        from vxcap.targets.lab_cilium import cilium_lab

        return cilium_lab(prefix, lab_file, nodes, subnets, overlay)
    if overlay == "ipip" and ipip_mode is None and lab_file is None and nodes is None:
        existing = LabMemory(prefix).recall()  # the ipip lab that exists, in the mode it was built with
        if existing is not None and existing.spec.dataplane == "ipip":
            return existing
    if overlay is not None and overlay != "vxlan":
        base = choose_lab(prefix, lab_file, nodes, subnets) if (lab_file or nodes) else reference_lab()
        mode = {"always": "Always", "cross-subnet": "CrossSubnet", None: None}[ipip_mode]
        data = with_overlay(yaml.safe_load(base.text), overlay, mode)
        text = yaml.safe_dump(data, sort_keys=False)
        return LabSource(_parse(text, "the lab description"), text, f"{base.origin}, {overlay} data plane")
    if overlay == "vxlan" and lab_file is None and nodes is None:
        return reference_lab()
    if lab_file is not None and nodes is not None:
        raise InputError("give either --lab-file or --nodes/--subnets, not both")
    if lab_file is not None:
        return _from_file(lab_file)
    if nodes is not None:
        text = yaml.safe_dump(generate_lab(nodes, subnets or 1), sort_keys=False)
        return LabSource(_parse(text, "the generated lab"), text, f"a generated lab ({nodes} nodes, {subnets or 1} subnets)")
    if subnets is not None:
        raise InputError("--subnets goes with --nodes")
    return LabMemory(prefix).recall() or reference_lab()


def _flannel_lab(prefix: str, lab_file: Path | None, nodes: int | None, subnets: int | None,
                 direct_routing: bool | None) -> LabSource:
    from vxcap.core.lab.flannel import flannel_description

    if lab_file is None and nodes is None:
        existing = LabMemory(prefix).recall()
        if existing is not None and existing.spec.flannel is not None and (
                direct_routing is None or existing.spec.flannel.direct_routing == direct_routing):
            return existing
        base = reference_lab()
    else:
        base = choose_lab(prefix, lab_file, nodes, subnets)
    on = bool(direct_routing)
    text = yaml.safe_dump(flannel_description(yaml.safe_load(base.text), on), sort_keys=False)
    return LabSource(_parse(text, "the lab description"), text,
                     f"{base.origin}, Flannel vxlan (DirectRouting {'on' if on else 'off'})")


def lab_up(source: LabSource, prefix: str):
    """Build `source`'s lab, replacing another lab built earlier under this prefix."""
    from vxcap.adapters.lab import NetnsLab

    memory = LabMemory(prefix)
    earlier = memory.recall()
    if earlier is not None and earlier.text != source.text:
        NetnsLab(earlier.spec, prefix=prefix).down()
    status = NetnsLab(source.spec, prefix=prefix).up()
    memory.remember(source)
    return status


def lab_down(source: LabSource, prefix: str):
    from vxcap.adapters.lab import NetnsLab

    removed = NetnsLab(source.spec, prefix=prefix).down()
    LabMemory(prefix).forget()
    return removed


def lab_description(source: LabSource) -> dict:
    """The lab as plain data (`LabSpec.describe`): its data plane, per node and family the
    underlay, block, pod and encapsulation."""
    return source.spec.describe()


def lab_status(source: LabSource, prefix: str):
    from vxcap.adapters.lab import NetnsLab

    return NetnsLab(source.spec, prefix=prefix).status()


class LabTarget:
    def __init__(self, source: LabSource, prefix: str = DEFAULT_PREFIX, keep: bool = False,
                 cni: str | None = None) -> None:
        from vxcap.adapters.lab import NetnsLab

        _check_cni(source, prefix, cni)
        self.source = source
        self.spec = source.spec
        self.prefix = prefix
        self.lab = NetnsLab(self.spec, prefix=prefix)
        self.keep = keep
        self.built_here = False
        self.description = f"embedded lab {self.spec.cluster}: {source.origin}, namespaces {prefix}-*"
        # The pods' MTU, the smallest of the data plane's encapsulations' (the MTU probes' ladder starts there).
        self.pod_mtu = self.spec.pod_mtu

    def discover(self) -> Topology:
        """The lab's topology: a Flannel lab's overlay carries VNI 1, port 8472 and its mode (CrossSubnet
        for DirectRouting, Always without), so captures, decode, verdicts and evidence use those."""
        # A complete lab is used as it is, even when its configuration drifted:
        # judging a broken data plane is the point. Only a missing lab is built
        # (and removed after), and a half-built one (a crashed build) repaired.
        # Only the namespaces are looked at: reading every node's tables is `lab status`'s job,
        # and at 256 nodes it takes seconds.
        namespaces = self.lab.namespaces_present()
        built = LabMemory(self.prefix).recall()
        if (any(ns.exists for ns in namespaces) and built is not None and built.spec.flannel is None
                and self.spec.flannel is None and built.spec.dataplane != self.spec.dataplane):
            # Judged as another data plane, every direction would fail for the wrong reason.
            raise InputError(f"the lab {self.prefix}-* is built as {built.spec.dataplane}, not {self.spec.dataplane}: "
                             f"`vxcap lab up --overlay {self.spec.dataplane}` rebuilds it (or `vxcap lab down` first)")
        if any(ns.exists for ns in namespaces) and built is not None and built.spec.ipip and self.spec.ipip and (
                built.spec.ipip.mode != self.spec.ipip.mode):
            raise InputError(f"the lab {self.prefix}-* is built with ipipMode {built.spec.ipip.mode}, not "
                             f"{self.spec.ipip.mode}: `vxcap lab up --overlay ipip --ipip-mode ...` rebuilds it")
        if not any(ns.exists and not ns.adopted for ns in namespaces):
            self.built_here = True  # before building: an interrupted build is still ours to remove
            lab_up(self.source, self.prefix)
        elif not all(ns.exists for ns in namespaces):
            lab_up(self.source, self.prefix)
        # The data plane's families and formats (IPv6 underlay and pods, WireGuard, IP-in-IP) in the model's terms.
        return lab_topology(self.spec)

    def provision(self, nodes: tuple[str, ...]) -> dict[str, Pod]:
        with_ip6 = {pod.node: pod for pod in lab_pods(self.spec)}
        pods = {node: with_ip6[node] for node in nodes}
        if self.spec.antrea is not None:
            self.lab.warm_ovs_neighbours()
        if self.spec.ipv4_encap == "wireguard":
            self._handshake(nodes, {node: pod.ip for node, pod in pods.items()})
        if self.spec.ipv6_encap == "wireguard":
            self._handshake(nodes, {node: pod.ip6 for node, pod in pods.items()})
        return pods

    def _handshake(self, nodes: tuple[str, ...], addresses: dict) -> None:
        """One echo each way round every pair, only from the first-named node, before the captures.

        The run's echoes go out in both directions at once, so both wireguard-go peers would start a
        handshake at the same moment; seen on this lab, such a pair can then stay on crossed sessions,
        each side dropping what the other sends, for as long as the run lasts (the kernel's WireGuard,
        which Calico uses, settles it). Handshakes started from one side only are what a real cluster's
        first packet does; the run then judges an established tunnel."""
        from vxcap.adapters.echo import EchoPlan, echo_all

        echo_all([EchoPlan(self.lab.pod_netns(a), addresses[b], count=1, timeout=2.0)
                  for i, a in enumerate(nodes) for b in nodes[i + 1:]])

    def underlay_iface(self, node: str) -> str:
        return self.spec.underlay_iface

    def start_capture(self, node: str, path: Path, bpf: str):
        from vxcap.core.capture import DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN

        return self.lab.start_capture(node, path, bpf, snaplen=DEFAULT_SNAPLEN, max_packets=DEFAULT_MAX_PACKETS)

    def start_captures(self, requests: list[tuple[str, Path, str]]):
        from vxcap.core.capture import DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN

        return self.lab.start_captures(requests, snaplen=DEFAULT_SNAPLEN, max_packets=DEFAULT_MAX_PACKETS)

    # Echoes go out from this process, all probes at once (adapters.echo): an
    # all-pairs run on a large lab would otherwise fork well over a thousand pings.
    # The lab tests keep iputils ping as the independent witness.

    def ping_all(self, probes: Sequence[tuple[str, IPv4Address]], count: int):
        from vxcap.adapters.echo import EchoPlan, echo_all

        return echo_all([EchoPlan(self.lab.pod_netns(src), dst_ip, count=count) for src, dst_ip in probes])

    def df_ping_all(self, probes: Sequence[tuple[str, IPv4Address, int]], wait: float):
        """One DF echo per (source node, destination, payload size): (what the sender saw, its summary)."""
        from vxcap.adapters.echo import EchoPlan, echo_all

        plans = [EchoPlan(self.lab.pod_netns(src), dst_ip, timeout=wait, size=size, dont_fragment=True)
                 for src, dst_ip, size in probes]
        return [outcome if isinstance(outcome, VxcapError) else (outcome, outcome.message)
                for outcome in echo_all(plans)]

    def tcp_exchange(self, src_node: str, dst_node: str, dst_ip: IPv4Address, port: int) -> tuple[bool, str]:
        # The lab's listener takes whatever port the kernel gives: no two directions can collide.
        # An IPv6 destination is dst_node's pod's IPv6 address (the vxlan6 and dual labs).
        return self.lab.tcp_exchange(src_node, dst_node, ipv6=dst_ip.version == 6)

    def node_tables(self, node: str) -> dict[str, str]:
        files = self.lab.node_tables(node)
        files[rundir.POD_LINKS] = self.lab.pod_links(node)
        return files

    def node_links(self, node: str) -> dict[str, str]:
        """The tables every verdict reads (the node's and its test pod's links), without those only an
        explanation of a failure reads (`node_tables` has them all)."""
        return {rundir.NODE_LINKS: self.lab.node_links(node), rundir.POD_LINKS: self.lab.pod_links(node)}

    def release(self) -> None:
        if self.built_here and not self.keep:
            lab_down(self.source, self.prefix)


def _check_cni(source: LabSource, prefix: str, cni: str | None) -> None:
    """A run judges the promises of the CNI it was told: never a Calico lab as Flannel's or the reverse.
    The namespaces of both are named alike, so the lab that exists (remembered) is asked too."""
    if cni in (None, "auto"):
        return
    built = LabMemory(prefix).recall()
    for lab in (source, built):
        if lab is None:
            continue
        from vxcap.targets.lab_cilium import refuse_other_cni

        refuse_other_cni(lab.spec, prefix, cni)
        if (cni == "antrea") != (lab.spec.antrea is not None):
            raise InputError(f"the lab {prefix}-* is built as {lab.spec.dataplane}: `vxcap lab up --cni {cni}` "
                             "rebuilds it (or `vxcap lab down` first)")
        is_flannel = lab.spec.flannel is not None
        if cni == "calico" and is_flannel:
            raise InputError(f"the lab {prefix}-* is built as Flannel's vxlan: add --cni flannel (or --cni auto), "
                             "or `vxcap lab up` rebuilds Calico's")
        if cni == "flannel" and not is_flannel:
            raise InputError(f"the lab {prefix}-* is built as Calico's {lab.spec.dataplane}: "
                             "`vxcap lab up --cni flannel` rebuilds it as Flannel's (or `vxcap lab down` first)")
    if (built is not None and built.spec.flannel is not None and source.spec.flannel is not None
            and built.spec.flannel.direct_routing != source.spec.flannel.direct_routing):
        was = "on" if built.spec.flannel.direct_routing else "off"
        flag = "--direct-routing" if source.spec.flannel.direct_routing else "--no-direct-routing"
        raise InputError(f"the lab {prefix}-* is built with DirectRouting {was}: "
                         f"`vxcap lab up --cni flannel {flag}` rebuilds it, or leave {flag} out")
