"""The short TCP exchange whose SYN and SYN-ACK carry each pod's MSS onto the wire.

A listener in the destination pod accepts one connection; the source pod
connects, sends a few bytes and closes. Both are small Python programs given
to the interpreter as argv (`python -c PROGRAM ARGS`): no shell, no file to
copy into a pod, and the same programs for the lab and for a cluster's pods.
Over IPv6 the listener listens on "::" (its argv says 6); the SYNs then carry
the MSS of MTU - 60 instead of MTU - 40.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from vxcap.core.errors import InputError

# Prints the port it listens on (port 0: the kernel's choice) before it accepts,
# so a caller reading its first line knows it may connect.
LISTENER = """\
import socket, sys
v6 = sys.argv[3:] == ["6"]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if v6 else "0.0.0.0", int(sys.argv[1])))
s.listen(4)
s.settimeout(float(sys.argv[2]))
print(s.getsockname()[1], flush=True)
try:
    c, peer = s.accept()
except OSError as err:
    print("no connection:", err, flush=True)
    sys.exit(3)
c.settimeout(2.0)
try:
    c.recv(64)
except OSError:
    pass
c.close()
print("accepted", peer[0], flush=True)
"""

# Retries until the deadline: in a cluster the listener starts in another exec
# and may not listen yet. Every attempt's SYN carries the same MSS.
CONNECTOR = """\
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[3])
while True:
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0)
        break
    except OSError as err:
        if time.monotonic() >= deadline:
            print("no connection:", err, flush=True)
            sys.exit(1)
        time.sleep(0.1)
c.sendall(b"vxcap mss probe\\n")
c.close()
print("connected", flush=True)
"""

DEFAULT_TIMEOUT_S = 4.0


def _check(port: int, timeout: float) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(f"TCP port {port!r} is out of range (0..65535)")
    if timeout <= 0:
        raise InputError(f"TCP exchange timeout {timeout} must be positive")


def listener_argv(python: str, port: int = 0, timeout: float = DEFAULT_TIMEOUT_S, family: int = 4) -> list[str]:
    """Listen on `port` (0: any) of every address of `family`, print it, accept one connection within `timeout` s."""
    _check(port, timeout)
    if family not in (4, 6):
        raise InputError(f"TCP exchange: IP family {family!r} is neither 4 nor 6")
    return [python, "-c", LISTENER, str(port), f"{timeout:g}"] + (["6"] if family == 6 else [])


def connector_argv(
    python: str, dst_ip: IPv4Address | IPv6Address | str, port: int, timeout: float = DEFAULT_TIMEOUT_S
) -> list[str]:
    """Connect to dst_ip:port (either family; retrying until `timeout` s), send a line, close."""
    _check(port, timeout)
    if port == 0:
        raise InputError("TCP exchange: connect needs the listener's port, not 0")
    try:
        address = ip_address(str(dst_ip))
    except ValueError:
        raise InputError(f"TCP exchange: {dst_ip!r} is not an IP address") from None
    return [python, "-c", CONNECTOR, str(address), str(port), f"{timeout:g}"]


def listening_port(first_line: str) -> int | None:
    """The port the listener printed first, or None when it printed something else."""
    text = first_line.strip()
    return int(text) if text.isdigit() and 0 < int(text) <= 65535 else None


def connected(connector_output: str) -> bool:
    return "connected" in connector_output.split()
