"""IP-in-IP (RFC 2003, what Calico's tunl0 sends) in userspace, for kernels without the ipip module.

Run in a lab node's network namespace as `python -m vxcap.adapters.ipip_tun --local ADDRESS`: it
opens a TUN device named tunl0 (the lab then gives it Calico's MTU, address and routes), and

- each inner IPv4 packet the kernel routes into tunl0 goes out as a real protocol-4 packet
  (a raw socket with IP_HDRINCL) to the gateway of the tunl0 route that matched it, as the
  kernel's fallback tunl0 (remote any) takes the outer destination from the route's next hop;
- each protocol-4 packet delivered to the node loses its outer header and enters tunl0.

The outer header is the kernel's for tunl0 (`ttl inherit`, tos 0, ip_tunnel_xmit): TTL copied
from the inner packet (already decremented by the node's forwarding), DF copied from the inner
packet, ECN copied from the inner TOS, source the node's underlay address, IP ID chosen by the
kernel (raw_send_hdrinc fills a zero ID). An open raw protocol-4 socket also keeps the kernel
from answering with ICMP protocol-unreachable: it has a receiver for protocol 4.

The tunl0 routes are re-read whenever the node's IPv4 routes change (rtnetlink's route group),
so `ip route replace <block> via <wrong node> dev tunl0 onlink` takes effect as it would on a
kernel tunl0. Prints `ready` once the device and sockets exist; runs until killed (`lab down`).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network

DEVICE = "tunl0"
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
IPPROTO_IPIP = 4
RTMGRP_IPV4_ROUTE = 0x40
NETLINK_ROUTE = 0
DF = 0x4000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def read_routes(device: str) -> list[tuple[IPv4Network, bytes]]:
    """(destination, packed gateway) of every IPv4 route through `device` with a next hop, longest prefix first."""
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "dev", device], capture_output=True, text=True, check=False)
    routes = []
    for route in json.loads(out.stdout or "[]"):
        gateway, dst = route.get("gateway"), route.get("dst")
        if gateway and dst and dst != "default":
            routes.append((IPv4Network(dst if "/" in dst else f"{dst}/32"), IPv4Address(gateway).packed))
    return sorted(routes, key=lambda r: r[0].prefixlen, reverse=True)


def next_hop(routes: list[tuple[IPv4Network, bytes]], inner_dst: bytes) -> bytes | None:
    address = IPv4Address(inner_dst)
    return next((gateway for network, gateway in routes if address in network), None)


def outer_header(inner: bytes, local: bytes, remote: bytes) -> bytes:
    """The 20-byte outer IPv4 header the kernel's tunl0 would put before `inner` (checksum and ID left
    0: the kernel fills both for an IP_HDRINCL socket)."""
    tos, ttl = inner[1] & 0x03, inner[8]
    flags = struct.unpack_from("!H", inner, 6)[0] & DF
    return struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(inner), 0, flags, ttl, IPPROTO_IPIP, 0, local, remote)


def serve(local: IPv4Address, device: str = DEVICE) -> None:
    tun = open_tun(device)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    nl.bind((0, RTMGRP_IPV4_ROUTE))
    nl.setblocking(False)
    routes = read_routes(device)
    print("ready", flush=True)
    sys.stdout.close()
    own = local.packed
    while True:
        readable, _, _ = select.select([nl, tun, raw], [], [])
        if nl in readable:  # first: a route changed before the packet that follows it was routed
            try:
                while nl.recv(65536):
                    pass
            except BlockingIOError:
                pass
            routes = read_routes(device)
        if tun in readable:
            inner = os.read(tun, 65535)
            if len(inner) >= 20 and inner[0] >> 4 == 4:
                remote = next_hop(routes, inner[16:20])
                if remote is not None:
                    try:
                        raw.sendto(outer_header(inner, own, remote) + inner, (str(IPv4Address(remote)), 0))
                    except OSError:
                        pass  # as the kernel: a packet it cannot send is dropped
        if raw in readable:
            packet = raw.recv(65535)
            ihl = (packet[0] & 0x0F) * 4
            inner = packet[ihl:]
            if packet[9] == IPPROTO_IPIP and len(inner) >= 20 and inner[0] >> 4 == 4:
                try:
                    os.write(tun, inner)
                except OSError:
                    pass  # tunl0 down (a fault, or the lab going away): dropped, as by a down kernel tunl0


# --- the lab's side: start one per node -------------------------------------------------------

READY_TIMEOUT_S = 10.0


def start(netns_name: str, args: tuple[str, ...]) -> int:
    """Start the forwarder in `netns_name` (`args` from core.lab.dataplanes.ipip_forwarder_args); its pid
    once it says `ready` (tunl0 and its sockets exist). It runs until `lab down` kills it."""
    from vxcap.adapters import children, netns
    from vxcap.adapters.netns import NetnsError

    argv = [*netns.exec_prefix(netns_name), sys.executable, "-m", "vxcap.adapters.ipip_tun", *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    if line.strip() != b"ready":
        if proc.poll() is None:
            proc.kill()
        said = " | ".join(x.strip() for x in proc.stderr.read().decode(errors="replace").splitlines()[-3:] if x.strip())
        proc.wait()
        raise NetnsError(f"the userspace IPIP forwarder in {netns_name} did not start: {said or 'no message'}")
    proc.stderr.close()
    children.register(proc)
    return proc.pid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vxcap.adapters.ipip_tun", description=__doc__.splitlines()[0])
    parser.add_argument("--local", required=True, type=IPv4Address, help="the node's underlay address (outer source)")
    parser.add_argument("--device", default=DEVICE)
    args = parser.parse_args(argv)
    serve(args.local, args.device)


if __name__ == "__main__":
    main()
