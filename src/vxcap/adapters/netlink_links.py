"""A network namespace's links read over rtnetlink in this process, printed with `ip -d -j link show`'s names.

Knows only the kernel's rtnetlink (RTM_GETLINK) and setns(2) (through `netns.entered`). The
embedded lab reads every node's and every test pod's links while a coverage run decodes: on a
256-node lab that was 512 `ip -d -j link show` processes, about a second of CPU in the children
and a third of one in this process to start and reap them, on a machine whose whole run is ten.
One dump on a socket made inside the namespace costs a few hundred microseconds.

Every key written here is one `ip -d -j link show` (iproute2 6.1) prints, with the value it prints
for the same device: the saved `link.json` and `pod-link.json` are read by the same readers as a
cluster's (core.mtu.links, core.explain), and tests/adapters/test_netlink_links.py holds this to ip
itself on the real kernel. Not everything ip prints is here: no statistics, XDP, VF or
protodown-reason entries, and `info_data` only for VXLAN devices (the tunnel vxcap reads); a reader
that needs more keys must add them here (and to that test) first.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

from vxcap.adapters import netns
from vxcap.adapters.netns import NetnsError

__all__ = ["read_links", "links_json", "NetnsError"]

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP = 0x1, 0x2, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
AF_PACKET = 17
RTEXT_FILTER_VF, RTEXT_FILTER_SKIP_STATS = 1, 8  # ip asks VF; statistics are never printed here

NLMSG = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
NLA = struct.Struct("=HH")
U32, S32, U16, U8, BE16, BE32 = (struct.Struct(f) for f in ("=I", "=i", "=H", "=B", ">H", ">I"))
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

# linux/if_link.h
(IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_QDISC) = range(1, 7)
IFLA_MASTER, IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKMODE, IFLA_LINKINFO = 10, 13, 16, 17, 18
IFLA_IFALIAS, IFLA_AF_SPEC, IFLA_GROUP, IFLA_EXT_MASK, IFLA_PROMISCUITY = 20, 26, 27, 29, 30
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_PHYS_PORT_ID, IFLA_PHYS_SWITCH_ID = 31, 32, 34, 36
IFLA_LINK_NETNSID, IFLA_PHYS_PORT_NAME, IFLA_PROTO_DOWN, IFLA_GSO_MAX_SEGS, IFLA_GSO_MAX_SIZE = 37, 38, 39, 40, 41
IFLA_MIN_MTU, IFLA_MAX_MTU, IFLA_PROP_LIST, IFLA_ALT_IFNAME, IFLA_PERM_ADDRESS = 50, 51, 52, 53, 54
IFLA_PARENT_DEV_NAME, IFLA_PARENT_DEV_BUS_NAME, IFLA_GRO_MAX_SIZE = 56, 57, 58
IFLA_TSO_MAX_SIZE, IFLA_TSO_MAX_SEGS, IFLA_ALLMULTI = 59, 60, 61
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND = 1, 2, 4
IFLA_INET6_ADDR_GEN_MODE = 8

# IFLA_VXLAN_*
(VX_ID, VX_GROUP, VX_LINK, VX_LOCAL, VX_TTL, VX_TOS, VX_LEARNING, VX_AGEING, VX_LIMIT, VX_PORT_RANGE,
 VX_PROXY, VX_RSC, VX_L2MISS, VX_L3MISS, VX_PORT, VX_GROUP6, VX_LOCAL6, VX_UDP_CSUM, VX_UDP_ZERO_CSUM6_TX,
 VX_UDP_ZERO_CSUM6_RX, VX_REMCSUM_TX, VX_REMCSUM_RX, VX_GBP, VX_REMCSUM_NOPARTIAL, VX_COLLECT_METADATA,
 VX_LABEL, VX_GPE, VX_TTL_INHERIT, VX_DF, VX_VNIFILTER) = range(1, 31)

# ip's order and names (print_link_flags): NO-CARRIER first, then these, then what is left in hex.
IFF_RUNNING, IFF_UP, IFF_POINTOPOINT = 0x40, 0x1, 0x10
FLAG_NAMES = (
    (0x8, "LOOPBACK"), (0x2, "BROADCAST"), (0x10, "POINTOPOINT"), (0x1000, "MULTICAST"), (0x80, "NOARP"),
    (0x200, "ALLMULTI"), (0x100, "PROMISC"), (0x400, "MASTER"), (0x800, "SLAVE"), (0x4, "DEBUG"),
    (0x8000, "DYNAMIC"), (0x4000, "AUTOMEDIA"), (0x2000, "PORTSEL"), (0x20, "NOTRAILERS"), (0x1, "UP"),
    (0x10000, "LOWER_UP"), (0x20000, "DORMANT"), (0x40000, "ECHO"),
)
OPER_STATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
LINK_MODES = ("DEFAULT", "DORMANT")
ADDR_GEN_MODES = ("eui64", "none", "stable_secret", "random")
ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT, ARPHRD_IPGRE, ARPHRD_IP6GRE = 768, 769, 776, 778, 823
# ip's names (lib/ll_types.c) of the link types a lab or a node has; any other is printed as ip does: [N].
LINK_TYPES = {
    1: "ether", 24: "ieee1394", 32: "infiniband", 256: "slip", 512: "ppp", 768: "ipip", 769: "tunnel6",
    772: "loopback", 776: "sit", 778: "gre", 779: "pimreg", 801: "ieee802.11", 803: "ieee802.11/radiotap",
    823: "gre6", 824: "netlink", 825: "6lowpan", 0xFFFE: "none", 0xFFFF: "void",
}

RECV_BUFFER = 1 << 16  # the kernel fills a dump's reads up to 32 KiB
DUMP_TIMEOUT = 10.0  # seconds; the kernel answers a link dump at once, but a read must never hang a run


def read_links(netns_name: str) -> list[dict[str, Any]]:
    """The links of the named namespace, each as `ip -d -j link show` prints it (the keys listed above).

    The socket is made by this thread inside the namespace (a socket stays where it was made); no
    process is started. A namespace that cannot be entered or read raises NetnsError, one line naming it.
    """
    with netns.entered(netns_name):
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        except OSError as err:
            raise NetnsError(f"no netlink socket in {netns_name}: {err.strerror or err}") from None
    with sock:
        try:
            messages = _dump(sock)
        except OSError as err:
            raise NetnsError(f"reading the links of {netns_name} over netlink: {err.strerror or err}") from None
    try:
        return _links(messages)
    except (struct.error, IndexError, UnicodeDecodeError) as err:
        raise NetnsError(f"the links of {netns_name}: unreadable netlink answer: {err}") from None


def links_json(netns_name: str) -> str:
    """`read_links` as the JSON text `ip -j` would have written (a list, one object per link)."""
    return json.dumps(read_links(netns_name), separators=(",", ":"))


def _dump(sock: socket.socket) -> list[tuple[bytes, int, int]]:
    """Every RTM_NEWLINK of one RTM_GETLINK dump: (buffer, start of its ifinfomsg, end of the message)."""
    sock.settimeout(DUMP_TIMEOUT)
    sock.bind((0, 0))
    seq = 1
    attr = NLA.pack(8, IFLA_EXT_MASK) + U32.pack(RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS)
    body = IFINFOMSG.pack(AF_PACKET, 0, 0, 0, 0) + attr
    sock.sendall(NLMSG.pack(NLMSG.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
    messages: list[tuple[bytes, int, int]] = []
    while True:
        buf = sock.recv(RECV_BUFFER)
        if not buf:
            raise OSError(0, "the kernel closed the dump")
        off = 0
        while off + NLMSG.size <= len(buf):
            length, kind, _flags, mseq, _pid = NLMSG.unpack_from(buf, off)
            if length < NLMSG.size or off + length > len(buf):
                raise OSError(0, f"a netlink message of {length} bytes at {off} of {len(buf)}")
            if mseq == seq:
                if kind == NLMSG_DONE:
                    return messages
                if kind == NLMSG_ERROR:
                    (code,) = S32.unpack_from(buf, off + NLMSG.size)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return messages
                if kind == RTM_NEWLINK:
                    messages.append((buf, off + NLMSG.size, off + length))
            off += (length + 3) & ~3


def _attrs(buf: bytes, off: int, end: int) -> dict[int, tuple[int, int]]:
    """type -> (start, end) of each attribute's payload between off and end (the last of a type wins, as in ip)."""
    found = {}
    while off + 4 <= end:
        length, kind = NLA.unpack_from(buf, off)
        if length < 4:
            break
        found[kind & NLA_TYPE_MASK] = (off + 4, off + length)
        off += (length + 3) & ~3
    return found


def _str(buf: bytes, span: tuple[int, int]) -> str:
    return buf[span[0]:span[1]].split(b"\0", 1)[0].decode()


def _u32(buf: bytes, span: tuple[int, int]) -> int:
    return U32.unpack_from(buf, span[0])[0]



def _named(out: dict[str, Any], key: str, value: int, names: tuple[str, ...]) -> None:
    """ip's name for a numbered state, or the number under `<key>_index` where ip has no name for it."""
    if value < len(names):
        out[key] = names[value]
    else:
        out[f"{key}_index"] = value

def _u8(buf: bytes, span: tuple[int, int]) -> int:
    return buf[span[0]]


def _lladdr(raw: bytes, link_type: int) -> str:
    """ll_addr_n2a: tunnels' addresses as IP addresses, the rest as colon-separated hex."""
    if len(raw) == 4 and link_type in (ARPHRD_TUNNEL, ARPHRD_SIT, ARPHRD_IPGRE):
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16 and link_type in (ARPHRD_TUNNEL6, ARPHRD_IP6GRE):
        return socket.inet_ntop(socket.AF_INET6, raw)
    return ":".join(f"{b:02x}" for b in raw)


def _flags(flags: int, m_down: bool) -> list[str]:
    names = ["NO-CARRIER"] if flags & IFF_UP and not flags & IFF_RUNNING else []
    flags &= ~IFF_RUNNING
    for bit, name in FLAG_NAMES:
        if flags & bit:
            flags &= ~bit
            names.append(name)
    if flags:
        names.append(f"{flags:x}")
    if m_down:
        names.append("M-DOWN")
    return names


def _links(messages: list[tuple[bytes, int, int]]) -> list[dict[str, Any]]:
    parsed = []
    for buf, off, end in messages:
        _family, link_type, index, flags, _change = IFINFOMSG.unpack_from(buf, off)
        parsed.append((buf, link_type, index, flags, _attrs(buf, off + IFINFOMSG.size, end)))
    # ip names a lower device, a master and a VXLAN's device from the same dump (ll_index_to_name).
    names = {index: _str(buf, a[IFLA_IFNAME]) for buf, _t, index, _f, a in parsed if IFLA_IFNAME in a}
    up = {index: bool(flags & IFF_UP) for _b, _t, index, flags, _a in parsed}
    return [_link(buf, link_type, index, flags, a, names, up)
            for buf, link_type, index, flags, a in parsed if IFLA_IFNAME in a]


def _name(index: int, names: dict[int, str]) -> str:
    return names.get(index, f"if{index}")


def _link(buf: bytes, link_type: int, index: int, flags: int, a: dict[int, tuple[int, int]],
          names: dict[int, str], up: dict[int, bool]) -> dict[str, Any]:
    out: dict[str, Any] = {"ifindex": index}
    m_down = False
    if IFLA_LINK in a:
        lower = _u32(buf, a[IFLA_LINK])
        if not lower:
            out["link"] = None
        elif IFLA_LINK_NETNSID in a:
            out["link_index"] = lower
        else:
            out["link"] = _name(lower, names)
            m_down = not up.get(lower, False)
    out["ifname"] = names[index]
    out["flags"] = _flags(flags, m_down)
    if IFLA_MTU in a:
        out["mtu"] = _u32(buf, a[IFLA_MTU])
    if IFLA_QDISC in a:
        out["qdisc"] = _str(buf, a[IFLA_QDISC])
    if IFLA_MASTER in a:
        out["master"] = _name(_u32(buf, a[IFLA_MASTER]), names)
    if IFLA_OPERSTATE in a:
        _named(out, "operstate", _u8(buf, a[IFLA_OPERSTATE]), OPER_STATES)
    if IFLA_LINKMODE in a:
        _named(out, "linkmode", _u8(buf, a[IFLA_LINKMODE]), LINK_MODES)
    if IFLA_GROUP in a:
        group = S32.unpack_from(buf, a[IFLA_GROUP][0])[0]
        out["group"] = "default" if group == 0 else str(group)  # /etc/iproute2/group names only 0
    if IFLA_TXQLEN in a and (qlen := S32.unpack_from(buf, a[IFLA_TXQLEN][0])[0]):
        out["txqlen"] = qlen
    out["link_type"] = LINK_TYPES.get(link_type, f"[{link_type}]")
    if IFLA_ADDRESS in a:
        start, stop = a[IFLA_ADDRESS]
        out["address"] = _lladdr(buf[start:stop], link_type)
    if IFLA_BROADCAST in a:
        if flags & IFF_POINTOPOINT:
            out["link_pointtopoint"] = True
        start, stop = a[IFLA_BROADCAST]
        out["broadcast"] = _lladdr(buf[start:stop], link_type)
    if IFLA_PERM_ADDRESS in a:
        start, stop = a[IFLA_PERM_ADDRESS]
        perm = buf[start:stop]
        if IFLA_ADDRESS not in a or buf[a[IFLA_ADDRESS][0]:a[IFLA_ADDRESS][1]] != perm:
            out["permaddr"] = _lladdr(perm, link_type)
    if IFLA_LINK_NETNSID in a:
        out["link_netnsid"] = S32.unpack_from(buf, a[IFLA_LINK_NETNSID][0])[0]
    if IFLA_PROTO_DOWN in a and _u8(buf, a[IFLA_PROTO_DOWN]):
        out["proto_down"] = True
    for attr, key in ((IFLA_PROMISCUITY, "promiscuity"), (IFLA_ALLMULTI, "allmulti"),
                      (IFLA_MIN_MTU, "min_mtu"), (IFLA_MAX_MTU, "max_mtu")):
        if attr in a:
            out[key] = _u32(buf, a[attr])
    if IFLA_LINKINFO in a:
        out["linkinfo"] = _linkinfo(buf, a[IFLA_LINKINFO], names)
    if IFLA_AF_SPEC in a and (mode := _addr_gen_mode(buf, a[IFLA_AF_SPEC])) is not None:
        out["inet6_addr_gen_mode"] = mode
    for attr, key in ((IFLA_NUM_TX_QUEUES, "num_tx_queues"), (IFLA_NUM_RX_QUEUES, "num_rx_queues"),
                      (IFLA_GSO_MAX_SIZE, "gso_max_size"), (IFLA_GSO_MAX_SEGS, "gso_max_segs"),
                      (IFLA_TSO_MAX_SIZE, "tso_max_size"), (IFLA_TSO_MAX_SEGS, "tso_max_segs"),
                      (IFLA_GRO_MAX_SIZE, "gro_max_size")):
        if attr in a:
            out[key] = _u32(buf, a[attr])
    if IFLA_PHYS_PORT_NAME in a:
        out["phys_port_name"] = _str(buf, a[IFLA_PHYS_PORT_NAME])
    for attr, key in ((IFLA_PHYS_PORT_ID, "phys_port_id"), (IFLA_PHYS_SWITCH_ID, "phys_switch_id")):
        if attr in a:
            out[key] = buf[a[attr][0]:a[attr][1]].hex()
    for attr, key in ((IFLA_PARENT_DEV_BUS_NAME, "parentbus"), (IFLA_PARENT_DEV_NAME, "parentdev"),
                      (IFLA_IFALIAS, "ifalias")):
        if attr in a:
            out[key] = _str(buf, a[attr])
    if IFLA_PROP_LIST in a:
        start, stop = a[IFLA_PROP_LIST]
        props = _attrs_all(buf, start, stop)
        out["altnames"] = [_str(buf, span) for kind, span in props if kind == IFLA_ALT_IFNAME]
    return out


def _attrs_all(buf: bytes, off: int, end: int) -> list[tuple[int, tuple[int, int]]]:
    """Every attribute in order, repeated types too (a property list repeats IFLA_ALT_IFNAME)."""
    found = []
    while off + 4 <= end:
        length, kind = NLA.unpack_from(buf, off)
        if length < 4:
            break
        found.append((kind & NLA_TYPE_MASK, (off + 4, off + length)))
        off += (length + 3) & ~3
    return found


def _addr_gen_mode(buf: bytes, span: tuple[int, int]) -> str | None:
    inet6 = _attrs(buf, *span).get(socket.AF_INET6)
    mode_span = _attrs(buf, *inet6).get(IFLA_INET6_ADDR_GEN_MODE) if inet6 else None
    if mode_span is None:
        return None
    mode = _u8(buf, mode_span)
    return ADDR_GEN_MODES[mode] if mode < len(ADDR_GEN_MODES) else f"0x{mode:02x}"


def _linkinfo(buf: bytes, span: tuple[int, int], names: dict[int, str]) -> dict[str, Any]:
    info = _attrs(buf, *span)
    out: dict[str, Any] = {}
    if IFLA_INFO_KIND in info:
        kind = out["info_kind"] = _str(buf, info[IFLA_INFO_KIND])
        if kind == "vxlan":  # ip prints info_data, empty too, whenever the kind has a printer
            data = info.get(IFLA_INFO_DATA)
            out["info_data"] = _vxlan(buf, _attrs(buf, *data), names) if data else {}
    if IFLA_INFO_SLAVE_KIND in info:
        out["info_slave_kind"] = _str(buf, info[IFLA_INFO_SLAVE_KIND])
    return out


def _set(buf: bytes, d: dict[int, tuple[int, int]], attr: int) -> bool:
    return attr in d and bool(_u8(buf, d[attr]))


def _vxlan(buf: bytes, d: dict[int, tuple[int, int]], names: dict[int, str]) -> dict[str, Any]:
    """vxlan_print_opt's JSON keys, in its order."""
    out: dict[str, Any] = {}
    if _set(buf, d, VX_COLLECT_METADATA):
        out["external"] = True
    if _set(buf, d, VX_VNIFILTER):
        out["vnifilter"] = True
    if VX_ID in d and d[VX_ID][1] - d[VX_ID][0] >= 4:
        out["id"] = _u32(buf, d[VX_ID])
    if VX_GROUP in d:
        raw = buf[d[VX_GROUP][0]:d[VX_GROUP][0] + 4]
        if any(raw):
            out["group" if 224 <= raw[0] <= 239 else "remote"] = socket.inet_ntop(socket.AF_INET, raw)
    elif VX_GROUP6 in d:
        raw = buf[d[VX_GROUP6][0]:d[VX_GROUP6][0] + 16]
        if any(raw):
            out["group6" if raw[0] == 0xFF else "remote6"] = socket.inet_ntop(socket.AF_INET6, raw)
    if VX_LOCAL in d:
        raw = buf[d[VX_LOCAL][0]:d[VX_LOCAL][0] + 4]
        if any(raw):
            out["local"] = socket.inet_ntop(socket.AF_INET, raw)
    elif VX_LOCAL6 in d:
        raw = buf[d[VX_LOCAL6][0]:d[VX_LOCAL6][0] + 16]
        if any(raw):
            out["local6"] = socket.inet_ntop(socket.AF_INET6, raw)
    if VX_LINK in d and (lower := _u32(buf, d[VX_LINK])):
        out["link"] = _name(lower, names)
    if VX_PORT_RANGE in d:
        low, high = struct.unpack_from(">HH", buf, d[VX_PORT_RANGE][0])
        out["port_range"] = {"low": low, "high": high}
    if VX_PORT in d:
        out["port"] = BE16.unpack_from(buf, d[VX_PORT][0])[0]
    if VX_LEARNING in d:
        out["learning"] = bool(_u8(buf, d[VX_LEARNING]))
    for attr, key in ((VX_PROXY, "proxy"), (VX_RSC, "rsc"), (VX_L2MISS, "l2miss"), (VX_L3MISS, "l3miss")):
        if _set(buf, d, attr):
            out[key] = True
    if VX_TOS in d and (tos := _u8(buf, d[VX_TOS])):
        out["tos"] = hex(tos)
    if not _set(buf, d, VX_TTL_INHERIT) and VX_TTL in d:  # ip prints nothing in JSON for "ttl inherit"
        out["ttl"] = _u8(buf, d[VX_TTL])
    if VX_DF in d and (df := _u8(buf, d[VX_DF])) in (0, 1, 2):
        out["df"] = ("unset", "set", "inherit")[df]
    if VX_LABEL in d and (label := BE32.unpack_from(buf, d[VX_LABEL][0])[0]):
        out["label"] = hex(label)
    if VX_AGEING in d:
        out["ageing"] = _u32(buf, d[VX_AGEING])
    if VX_LIMIT in d and (limit := _u32(buf, d[VX_LIMIT])):
        out["limit"] = limit
    for attr, key in ((VX_UDP_CSUM, "udp_csum"), (VX_UDP_ZERO_CSUM6_TX, "udp_zero_csum6_tx"),
                      (VX_UDP_ZERO_CSUM6_RX, "udp_zero_csum6_rx")):
        if attr in d:
            out[key] = bool(_u8(buf, d[attr]))
    for attr, key in ((VX_REMCSUM_TX, "remcsum_tx"), (VX_REMCSUM_RX, "remcsum_rx")):
        if _set(buf, d, attr):
            out[key] = True
    if VX_GBP in d:
        out["gbp"] = True
    if VX_GPE in d:
        out["gpe"] = True
    return out
