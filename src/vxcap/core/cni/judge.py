"""What a direction's frames showed against what its CNI promised: each difference named by its field.

Plain values in, reasons out, for the verdict to use once the run path judges other CNIs: the
decoder reports a `SeenWire` per frame (from VXLAN, `core.geneve`, or a plain IP header).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vxcap.core.cni import Encap
from vxcap.core.cni.plan import CniDirection


@dataclass(frozen=True, slots=True)
class SeenWire:
    encap: Encap
    outer_src: IPv4Address | None = None
    outer_dst: IPv4Address | None = None
    port: int | None = None  # UDP destination port of the encapsulation
    vni: int | None = None
    udp_checksum: int | None = None  # the outer UDP checksum field as captured


def mismatches(direction: CniDirection, seen: SeenWire) -> tuple[str, ...]:
    want = direction.expected
    where = f"{direction.src_node} → {direction.dst_node}"
    if seen.encap is not want.encap:
        if want.encap is Encap.PLAIN:
            return (f"{where}: {seen.encap.value} where plain was expected ({direction.reason})",)
        if seen.encap is Encap.PLAIN:
            return (f"{where}: plain where {want.describe()} was promised ({direction.reason})",)
        return (f"{where}: {seen.encap.value} where {want.encap.value} was promised ({direction.reason})",)
    reasons = []
    # Plain traffic's outermost header is the pods' own; a tunnel's is the nodes'.
    plain = want.encap is Encap.PLAIN
    src, dst = (direction.src_ip, direction.dst_ip) if plain else (direction.outer_src, direction.outer_dst)
    if seen.outer_src is not None and seen.outer_src != src:
        reasons.append(f"{where}: outer source {seen.outer_src}, expected {src}")
    if seen.outer_dst is not None and seen.outer_dst != dst:
        reasons.append(f"{where}: outer destination {seen.outer_dst}, expected {dst}")
    if plain:
        return tuple(reasons)
    if want.port is not None and seen.port != want.port:
        reasons.append(f"{where}: UDP port {seen.port}, expected {want.port}")
    if isinstance(want.vni, int) and seen.vni != want.vni:
        if "identity" in direction.reason:
            reasons.append(f"{where}: VNI {seen.vni} is not the sender's security identity {want.vni}")
        else:
            reasons.append(f"{where}: VNI {seen.vni}, expected {want.vni}")
    if want.zero_udp_checksum and seen.udp_checksum not in (None, 0):
        reasons.append(f"{where}: outer UDP checksum {seen.udp_checksum:#06x}, expected 0 (the CNI sends none)")
    return tuple(reasons)
