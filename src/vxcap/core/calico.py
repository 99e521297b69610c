"""Calico's view of a cluster, read from plain API objects into a `Topology`.

Input is what the Kubernetes API returns as JSON (dicts): Node objects with
Calico's annotations, and the IPPool, BlockAffinity and FelixConfiguration
resources from either API group (`crd.projectcalico.org/v1`, where
`spec.deleted` is the string "true", or `projectcalico.org/v3`, where it is a
bool). Nothing here talks to a cluster, so every rule is tested as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network, ip_interface, ip_network
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.model import (
    DEFAULT_PORT,
    DEFAULT_VNI,
    DEFAULT_WG_PORT,
    DEFAULT_WG_PORT_V6,
    Mode,
    Node,
    Overlay,
    Topology,
    normalise_mac,
)

# calico-node writes these on every Kubernetes Node (libcalico-go k8s/resources/node.go).
ANNOTATION_IPV4 = "projectcalico.org/IPv4Address"  # CIDR form: "10.10.10.11/24"
ANNOTATION_VTEP_IP = "projectcalico.org/IPv4VXLANTunnelAddr"
ANNOTATION_VTEP_MAC = "projectcalico.org/VXLANTunnelMACAddr"
ANNOTATION_IPV6 = "projectcalico.org/IPv6Address"  # CIDR form: "fd00:10::11/64"
ANNOTATION_VTEP_IP6 = "projectcalico.org/IPv6VXLANTunnelAddr"
ANNOTATION_VTEP_MAC6 = "projectcalico.org/VXLANTunnelMACAddrV6"
ANNOTATION_WG_KEY = "projectcalico.org/WireguardPublicKey"
ANNOTATION_WG_KEY6 = "projectcalico.org/WireguardPublicKeyV6"

FELIX_DEFAULT = "default"  # the cluster-wide FelixConfiguration; `node.<name>` ones override per node

# Calico 3.26+ adds "virtual" affinities for LoadBalancer IPs; only host blocks hold pods.
_HOST_AFFINITY = {"", "host"}
# A block still being claimed or released is not where a new pod lands.
_UNUSABLE_STATES = {"pendingDeletion"}


class CalicoError(InputError):
    """The cluster's Calico configuration is missing or one vxcap cannot judge (one line)."""


@dataclass(frozen=True, slots=True)
class CalicoObjects:
    """The raw `items` of each list, exactly as the API served them."""

    nodes: tuple[dict[str, Any], ...]
    ippools: tuple[dict[str, Any], ...]
    block_affinities: tuple[dict[str, Any], ...] = ()
    felix_configurations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Discovery:
    topology: Topology
    notes: tuple[str, ...] = field(default=())  # facts a user should know (guesses, fallbacks)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _network(text: Any, what: str) -> IPv4Network | None:
    """An IPv4 network, None for IPv6 (vxcap judges the IPv4 overlay only)."""
    try:
        net = ip_network(str(text), strict=False)
    except ValueError:
        raise CalicoError(f"{what}: {text!r} is not a CIDR") from None
    return net if isinstance(net, IPv4Network) else None


def _network6(text: Any) -> IPv6Network | None:
    """An IPv6 network, None for anything else (an IPv4 one; a bad CIDR, which `_network` names)."""
    try:
        net = ip_network(str(text), strict=False)
    except ValueError:
        return None
    return net if isinstance(net, IPv6Network) else None


def is_deleted(affinity: dict[str, Any]) -> bool:
    """`spec.deleted` is the string "true" in crd.projectcalico.org/v1 and a bool in v3.

    Calico marks an affinity deleted before removing it, so a live cluster can
    briefly show both the old and the new block for a node.
    """
    value = _spec(affinity).get("deleted", False)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def live_blocks(affinities: tuple[dict[str, Any], ...] | list[dict[str, Any]], family: int = 4) -> dict[str, list[Any]]:
    """Node name -> its host blocks of `family`, leaving out deleted and released affinities."""
    blocks: dict[str, list[Any]] = {}
    for affinity in affinities:
        spec = _spec(affinity)
        if is_deleted(affinity):
            continue
        if str(spec.get("type", "") or "") not in _HOST_AFFINITY:
            continue
        if str(spec.get("state", "") or "") in _UNUSABLE_STATES:
            continue
        node = str(spec.get("node", "") or "")
        block = _network(spec.get("cidr"), f"BlockAffinity {_name(affinity)}") if family == 4 else _network6(spec.get("cidr"))
        if node and block is not None:
            blocks.setdefault(node, []).append(block)
    for node_blocks in blocks.values():
        node_blocks.sort()
    return blocks


def _annotated_interface(name: str, annotations: dict[str, Any], key: str, shape: str):
    """The annotation `key` as an address with its prefix (a bare address is a host prefix), None when
    absent; one line naming the node and annotation when it is not one (`shape` says what was expected)."""
    text = annotations.get(key)
    if not text:
        return None
    try:
        return ip_interface(str(text))
    except ValueError:
        raise CalicoError(f"node {name}: annotation {key}={text!r} is not {shape}") from None


def node_underlay(node: dict[str, Any]) -> tuple[IPv4Interface, str | None]:
    """The node's underlay address with its prefix, and a note when the prefix is a guess.

    Calico's own annotation carries the prefix CrossSubnet decides with; the
    InternalIP has none, so it is taken as a /32 (every other node then counts
    as another subnet) and the caller is told.
    """
    name = _name(node)
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    address = _annotated_interface(name, annotations, ANNOTATION_IPV4, "an address/prefix")
    if isinstance(address, IPv4Interface):
        return address, None
    for entry in (node.get("status") or {}).get("addresses") or []:
        if entry.get("type") != "InternalIP":
            continue
        try:
            address = ip_interface(f"{entry.get('address')}/32")
        except ValueError:
            continue
        if isinstance(address, IPv4Interface):
            note = (
                f"node {name}: no {ANNOTATION_IPV4} annotation; using InternalIP {address.ip} as /32, "
                "so CrossSubnet expectations treat every other node as another subnet"
            )
            return address, note
    raise CalicoError(f"node {name}: no IPv4 underlay address (neither {ANNOTATION_IPV4} nor an InternalIP)")


def node_underlay6(node: dict[str, Any]) -> tuple[IPv6Interface | None, str | None]:
    """The node's IPv6 underlay (projectcalico.org/IPv6Address), else its IPv6 InternalIP as a /128 with a
    note (as `node_underlay` takes an IPv4 one), None when it has neither."""
    name = _name(node)
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    address = _annotated_interface(name, annotations, ANNOTATION_IPV6, "an address/prefix")
    if isinstance(address, IPv6Interface):
        return address, None
    for entry in (node.get("status") or {}).get("addresses") or []:
        if entry.get("type") != "InternalIP":
            continue
        try:
            address = ip_interface(f"{entry.get('address')}/128")
        except ValueError:
            continue
        if isinstance(address, IPv6Interface):
            return address, (f"node {name}: no {ANNOTATION_IPV6} annotation; using InternalIP {address.ip} as /128, "
                             "so CrossSubnet expectations treat every other node as another subnet")
    return None, None


def _vtep(node: dict[str, Any]) -> tuple[IPv4Address | None, str | None]:
    name = _name(node)
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    # Stored as a bare address, but libcalico validates it as a network: accept both.
    parsed = _annotated_interface(name, annotations, ANNOTATION_VTEP_IP, "an address")
    ip = parsed.ip if isinstance(parsed, IPv4Interface) else None
    try:
        mac = normalise_mac(annotations.get(ANNOTATION_VTEP_MAC))
    except InputError as err:
        raise CalicoError(f"node {name}: annotation {ANNOTATION_VTEP_MAC}: {err}") from None
    return ip, mac


def _choose_block(name: str, blocks: list[IPv4Network], vtep_ip: IPv4Address | None) -> tuple[IPv4Network | None, str | None]:
    if not blocks:
        return None, None
    if len(blocks) == 1:
        return blocks[0], None
    # The VTEP address is allocated from the node's first block, where its first pods live too.
    chosen = next((b for b in blocks if vtep_ip is not None and vtep_ip in b), blocks[0])
    others = ", ".join(str(b) for b in blocks if b != chosen)
    return chosen, f"node {name} has {len(blocks)} blocks; using {chosen} (also {others})"


def _int_setting(spec: dict[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CalicoError(f"FelixConfiguration {FELIX_DEFAULT}: {key}={value!r} is not a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CalicoError(f"FelixConfiguration {FELIX_DEFAULT}: {key}={value!r} is not a number") from None


def felix_settings(
    felix_configurations: tuple[dict[str, Any], ...] | list[dict[str, Any]], node: str | None = None
) -> tuple[int, int, int | None]:
    """(VNI, UDP port, MTU) from the FelixConfiguration named `default`, or for `node`: with
    what its own `node.<name>` FelixConfiguration sets on top (Felix's per-node override).

    Unset means Calico's defaults: VNI 4096, port 4789, and an MTU Felix works
    out from the host interfaces (None here; 0 in the resource means the same).
    """
    spec: dict[str, Any] = {}
    for config in felix_configurations:
        if _name(config) == FELIX_DEFAULT:
            spec = dict(_spec(config))
            break
    if node is not None:
        for config in felix_configurations:
            if _name(config) == f"node.{node}":
                spec.update({k: v for k, v in _spec(config).items() if v is not None and v != ""})
    vni = _int_setting(spec, "vxlanVNI")
    port = _int_setting(spec, "vxlanPort")
    mtu = _int_setting(spec, "vxlanMTU")
    return (
        DEFAULT_VNI if vni is None else vni,
        DEFAULT_PORT if port is None else port,
        mtu if mtu else None,
    )


def pool_encapsulation(pool: dict[str, Any]) -> tuple[str, Mode]:
    """("vxlan" or "ipip", its mode) of one IPPool: a pool with neither is ("vxlan", Never), plain."""
    spec = _spec(pool)
    name = _name(pool)
    # Both default to Never when unset (api/pkg/apis/projectcalico/v3/ippool.go).
    vxlan = str(spec.get("vxlanMode") or Mode.NEVER.value)
    ipip = str(spec.get("ipipMode") or "Never")
    modes = []
    for field_name, text in (("vxlanMode", vxlan), ("ipipMode", ipip)):
        try:
            modes.append(Mode.parse(text))
        except InputError:
            raise CalicoError(f"IPPool {name}: {field_name} {text!r} is not one vxcap handles (Always, CrossSubnet, Never)") from None
    vxlan_mode, ipip_mode = modes
    if ipip_mode is not Mode.NEVER:
        if vxlan_mode is not Mode.NEVER:
            raise CalicoError(f"IPPool {name} sets both ipipMode {ipip} and vxlanMode {vxlan}; Calico allows only one")
        if _network(spec.get("cidr"), f"IPPool {name}") is None:
            raise CalicoError(f"IPPool {name} is IPv6 with ipipMode {ipip}: Calico has no IP-in-IP over IPv6")
        return "ipip", ipip_mode
    return "vxlan", vxlan_mode


def pool_mode(pool: dict[str, Any]) -> Mode:
    """The overlay mode one IPPool asks for, of whichever encapsulation it turns on."""
    return pool_encapsulation(pool)[1]


def _enabled_v4_pools(pools: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], IPv4Network]]:
    result = []
    for pool in pools:
        spec = _spec(pool)
        if spec.get("disabled") is True or str(spec.get("disabled", "")).lower() == "true":
            continue
        cidr = _network(spec.get("cidr"), f"IPPool {_name(pool)}")
        if cidr is not None:
            result.append((pool, cidr))
    return result


def _enabled_v6_pools(pools: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], IPv6Network]]:
    result = []
    for pool in pools:
        spec = _spec(pool)
        if spec.get("disabled") is True or str(spec.get("disabled", "")).lower() == "true":
            continue
        try:
            cidr = ip_network(str(spec.get("cidr")), strict=False)
        except ValueError:
            continue  # _enabled_v4_pools names a bad CIDR
        if isinstance(cidr, IPv6Network):
            result.append((pool, cidr))
    return result


def ipv6_overlay(pools: tuple[dict[str, Any], ...]) -> tuple[Mode | None, IPv6Network | None]:
    """The IPv6 pools' vxlanMode (None: no enabled IPv6 pool, an IPv4-only cluster) and the pool when it is one."""
    enabled = _enabled_v6_pools(pools)
    if not enabled:
        return None, None
    modes = {_name(pool): pool_encapsulation(pool)[1] for pool, _ in enabled}
    if len(set(modes.values())) > 1:
        listing = ", ".join(f"{name} ({mode.value})" for name, mode in sorted(modes.items()))
        raise CalicoError(f"the IPv6 IPPools disagree on vxlanMode: {listing}; vxcap judges one mode per family")
    return next(iter(modes.values())), enabled[0][1] if len(enabled) == 1 else None


def overlay_mode(
    pools: tuple[dict[str, Any], ...], blocks: list[IPv4Network]
) -> tuple[Mode, IPv4Network | None, tuple[str, ...]]:
    """The mode of the pool(s) the pods' blocks come from, the pool when it is one, and notes.

    Only the pools that hold pod blocks matter: a second, unused pool with
    another mode does not change what the test pods' traffic does.
    """
    if not pools:
        raise CalicoError("no Calico IPPool found: is Calico installed (with the Kubernetes datastore)?")
    enabled = _enabled_v4_pools(pools)
    notes: list[str] = []
    relevant = [(pool, cidr) for pool, cidr in enabled if any(block.subnet_of(cidr) for block in blocks)]
    for block in blocks:
        if not any(block.subnet_of(cidr) for _, cidr in enabled):
            notes.append(f"block {block} lies in no enabled IPv4 IPPool; its mode is unknown and ignored")
    if not relevant:
        if not enabled:
            raise CalicoError("no enabled IPv4 Calico IPPool found")
        relevant = enabled
        if blocks:
            notes.append("no node block lies in an enabled pool; the mode comes from every enabled IPv4 pool")
        else:
            notes.append("no block affinities yet; the mode comes from every enabled IPv4 pool")
    encapsulation, mode = _one_encapsulation(relevant)
    pool_cidr = relevant[0][1] if len(relevant) == 1 else None
    return mode, pool_cidr, tuple(notes)


def _one_encapsulation(relevant) -> tuple[str, Mode]:
    found = {_name(pool): pool_encapsulation(pool) for pool, _ in relevant}
    if len({encap for encap, _ in found.values()}) > 1:
        listing = ", ".join(f"{name} ({encap} {mode.value})" for name, (encap, mode) in sorted(found.items()))
        raise CalicoError(f"the pods' IPPools disagree on the encapsulation: {listing}; vxcap judges one per run")
    encapsulation = next(iter(found.values()))[0]
    if len({mode for _, mode in found.values()}) > 1:
        listing = ", ".join(f"{name} ({mode.value})" for name, (_, mode) in sorted(found.items()))
        field_name = "ipipMode" if encapsulation == "ipip" else "vxlanMode"
        raise CalicoError(f"the pods' IPPools disagree on {field_name}: {listing}; vxcap judges one mode per run")
    return next(iter(found.values()))


def overlay_encapsulation(pools: tuple[dict[str, Any], ...], blocks: list[IPv4Network]) -> str:
    """"vxlan" or "ipip": what the pools holding the pods' blocks (else every enabled IPv4 pool) turn on."""
    enabled = _enabled_v4_pools(pools)
    relevant = [(pool, cidr) for pool, cidr in enabled if any(block.subnet_of(cidr) for block in blocks)] or enabled
    return _one_encapsulation(relevant)[0] if relevant else "vxlan"


def _flag(spec: dict[str, Any], key: str) -> bool:
    value = spec.get(key)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def wireguard_settings(felix_configurations) -> tuple[bool, bool, int, int]:
    """(wireguardEnabled, wireguardEnabledV6, wireguardListeningPort, ...V6) of the `default`
    FelixConfiguration, Felix's defaults where unset (false, false, 51820, 51821)."""
    spec = next((_spec(c) for c in felix_configurations if _name(c) == FELIX_DEFAULT), {})
    port, port6 = _int_setting(spec, "wireguardListeningPort"), _int_setting(spec, "wireguardListeningPortV6")
    return (_flag(spec, "wireguardEnabled"), _flag(spec, "wireguardEnabledV6"),
            port or DEFAULT_WG_PORT, port6 or DEFAULT_WG_PORT_V6)


def _node_v6(raw: dict[str, Any]) -> dict[str, Any]:
    """The node's IPv6 underlay, vxlan-v6.calico address and MAC, and both WireGuard keys ("" when not published)."""
    name = _name(raw)
    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    found: dict[str, Any] = {"wireguard_key": str(annotations.get(ANNOTATION_WG_KEY) or ""),
                             "wireguard_key6": str(annotations.get(ANNOTATION_WG_KEY6) or "")}
    address = _annotated_interface(name, annotations, ANNOTATION_IPV6, "an address/prefix")
    if isinstance(address, IPv6Interface):
        found["underlay6"] = address
    parsed = _annotated_interface(name, annotations, ANNOTATION_VTEP_IP6, "an address")
    if parsed is not None:
        found["vtep_ip6"] = parsed.ip if isinstance(parsed.ip, IPv6Address) else None
    try:
        found["vtep_mac6"] = normalise_mac(annotations.get(ANNOTATION_VTEP_MAC6))
    except InputError as err:
        raise CalicoError(f"node {name}: annotation {ANNOTATION_VTEP_MAC6}: {err}") from None
    return found


def _with_node_overrides(nodes: list[Node], felix_configurations, notes: list[str]) -> list[Node]:
    """Nodes whose `node.<name>` FelixConfiguration sets another VNI or port than the cluster's, with it."""
    vni, port, _ = felix_settings(felix_configurations)
    result = []
    for node in nodes:
        node_vni, node_port, _ = felix_settings(felix_configurations, node.name)
        changed = []
        if node_vni != vni:
            changed.append(f"vxlanVNI {node_vni} (the cluster's is {vni})")
        if node_port != port:
            changed.append(f"vxlanPort {node_port} (the cluster's is {port})")
        if changed:
            notes.append(f"FelixConfiguration node.{node.name} sets {' and '.join(changed)}: "
                         f"{node.name}'s VXLAN must carry it, and the other nodes' must still reach it")
            node = replace(node, vni=None if node_vni == vni else node_vni, port=None if node_port == port else node_port)
        result.append(node)
    return result


def _ipv6_only_node(raw: dict[str, Any], blocks6: dict[str, list[Any]], notes: list[str]) -> Node:
    """A node of an IPv6-only cluster: its IPv6 underlay (required), IPv6 block and VTEP, no IPv4 side
    unless calico-node annotated one anyway (then kept, but no IPv4 direction is planned)."""
    name = _name(raw)
    v6 = _node_v6(raw)
    if "underlay6" not in v6:
        underlay6, note = node_underlay6(raw)
        if underlay6 is None:
            raise CalicoError(f"node {name}: no IPv6 underlay address (neither {ANNOTATION_IPV6} nor an IPv6 InternalIP) "
                              "on a cluster whose only IPPools are IPv6")
        v6["underlay6"] = underlay6
        if note:
            notes.append(note)
    block6, note = _choose_block(name, blocks6.get(name, []), v6.get("vtep_ip6"))
    if note:
        notes.append(note)
    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    underlay = _annotated_interface(name, annotations, ANNOTATION_IPV4, "an address/prefix")
    return Node(name=name, underlay=underlay if isinstance(underlay, IPv4Interface) else None, block6=block6, **v6)


def topology_from_calico(objects: CalicoObjects, cluster: str = "") -> Discovery:
    """The cluster as vxcap judges it: nodes with underlay, block and VTEP; the overlay's settings."""
    if not objects.nodes:
        raise CalicoError("the cluster has no nodes")
    mode6, pool6 = ipv6_overlay(objects.ippools)
    # IPv6 only: IPv6 pools and no IPv4 one. The nodes then need no IPv4 address and no IPv4 direction is planned.
    ipv6_only = mode6 is not None and not _enabled_v4_pools(objects.ippools)
    blocks_by_node = live_blocks(objects.block_affinities)
    notes: list[str] = []
    nodes = []
    for raw in sorted(objects.nodes, key=_name):
        if ipv6_only:
            nodes.append(_ipv6_only_node(raw, live_blocks(objects.block_affinities, 6), notes))
            continue
        name = _name(raw)
        underlay, note = node_underlay(raw)
        if note:
            notes.append(note)
        vtep_ip, vtep_mac = _vtep(raw)
        block, note = _choose_block(name, blocks_by_node.get(name, []), vtep_ip)
        if note:
            notes.append(note)
        nodes.append(Node(name=name, underlay=underlay, block=block, vtep_ip=vtep_ip, vtep_mac=vtep_mac, **_node_v6(raw)))
    nodes = _with_node_overrides(nodes, objects.felix_configurations, notes)
    pod_blocks = [node.block for node in nodes if node.block is not None]
    if ipv6_only:
        # The overlay's IPv4 fields stay at Calico's defaults; `ipv4=False` says none of them is judged.
        mode, pool, encapsulation = Mode.CROSS_SUBNET, None, "vxlan"
    else:
        mode, pool, mode_notes = overlay_mode(objects.ippools, pod_blocks)
        notes.extend(mode_notes)
        encapsulation = overlay_encapsulation(objects.ippools, pod_blocks)
    if mode6 is not None:
        without = [node.name for node in nodes if node.underlay6 is None]
        if without:
            notes.append(f"an IPv6 IPPool, but no {ANNOTATION_IPV6} on {', '.join(without)}: "
                         "IPv6 directions to and from them are not planned")
    vni, port, mtu = felix_settings(objects.felix_configurations)
    wireguard, wireguard6, wg_port, wg_port6 = wireguard_settings(objects.felix_configurations)
    spec = next((_spec(c) for c in objects.felix_configurations if _name(c) == FELIX_DEFAULT), {})
    mtu6 = _int_setting(spec, "vxlanMTUV6") or None
    for enabled, key, family in ((wireguard, "wireguard_key", ""), (wireguard6, "wireguard_key6", "V6")):
        keyless = [node.name for node in nodes if enabled and not getattr(node, key)]
        if keyless:
            notes.append(f"wireguardEnabled{family}, but no {ANNOTATION_WG_KEY}{family} on {', '.join(keyless)}: "
                         "their traffic is expected unencrypted")
    try:
        overlay = Overlay(mode=mode, vni=vni, port=port, mtu=mtu, encapsulation=encapsulation, mode6=mode6, mtu6=mtu6,
                          wireguard=wireguard, wireguard6=wireguard6, wireguard_port=wg_port, wireguard_port6=wg_port6,
                          ipv4=not ipv6_only)
    except InputError as err:
        raise CalicoError(f"FelixConfiguration {FELIX_DEFAULT}: {err}") from None
    topology = Topology(overlay=overlay, nodes=tuple(nodes), pool=pool, cluster=cluster, pool6=pool6)
    return Discovery(topology=topology, notes=tuple(notes))
