"""WireGuard in a lab node: wireguard-go (userspace, over TUN) and `wg`.

Knows wireguard-go, wireguard-tools and nsenter. Each node's wireguard-go runs in
the node's network namespace *and* a mount namespace of its own (the one `ip netns
exec` gives it) with a private tmpfs on /run: wireguard-go and `wg` meet at
/run/wireguard/<device>.sock, and every node's device is called wireguard.cali, so
on a shared /run the nodes' sockets would be one path and `wg` would configure
whichever node made it last. `wg` reaches its own node's socket by entering that
process's namespaces (nsenter -t PID -m -n). Nothing is written to the host's /run.

The process outlives the `vxcap lab up` that started it (it is the node's data plane);
`lab down` finds it as a process of the node's namespace and kills it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from vxcap.adapters import children, netns
from vxcap.adapters.netns import NetnsError
from vxcap.core.lab.dataplanes import WIREGUARD_DEVICE

PROGRAM = "wireguard-go"
READY_TIMEOUT_S = 10.0


def _start(device: str) -> str:
    # ip netns exec unshares the mount namespace and makes / a slave: this mount stays in it.
    return f"mount -t tmpfs -o size=1m,mode=0755 vxcap-wg /run && exec {PROGRAM} -f {device}"


def _socket(pid: int, device: str = WIREGUARD_DEVICE) -> Path:
    return Path(f"/proc/{pid}/root/run/wireguard/{device}.sock")


def start(netns_name: str, device: str = WIREGUARD_DEVICE) -> int:
    """Start wireguard-go for `device` (wireguard.cali, wg-v6.cali) in `netns_name`; its pid once `wg` can talk to it."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen([*netns.exec_prefix(netns_name), "sh", "-c", _start(device)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        except FileNotFoundError:
            raise NetnsError("ip not found: install iproute2") from None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _socket(proc.pid, device).exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                err.seek(0)
                said = " | ".join(line.strip() for line in err.read().decode(errors="replace").splitlines()
                                  if line.strip().strip("│┌┐└┘─ "))
                hint = " (apt-get install wireguard-go wireguard-tools)" if "not found" in said else ""
                raise NetnsError(f"{PROGRAM} in {netns_name} did not start: {said or 'no message'}{hint}")
            time.sleep(0.02)
    # Not waited for here: it runs until `lab down`. Its exit status goes to whoever reaps it.
    children.register(proc)
    return proc.pid


def find(netns_name: str, device: str | None = None) -> int | None:
    """The pid of the wireguard-go serving `netns_name` (its `device`, when a node has two), if one runs."""
    for pid in netns.netns_pids(netns_name):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != PROGRAM:
                continue
            if device is None or device.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
    return None


def _wg(pid: int, args: list[str], input: str | None = None) -> str:
    return netns.run(["nsenter", "-t", str(pid), "-m", "-n", "wg", *args], input=input).stdout


def genkey() -> tuple[str, str]:
    """(private, public) from `wg genkey` / `wg pubkey`."""
    private = netns.run(["wg", "genkey"]).stdout.strip()
    public = netns.run(["wg", "pubkey"], input=private + "\n").stdout.strip()
    return private, public


def configure(pid: int, wg_set_argv: tuple[str, ...], private_key: str) -> None:
    """`wg set ...` (argv from core, its private-key path "/dev/stdin") for the wireguard-go at `pid`."""
    if wg_set_argv[:2] != ("wg", "set"):
        raise NetnsError(f"not a wg set command: {' '.join(wg_set_argv[:3])}")
    _wg(pid, list(wg_set_argv[1:]), input=private_key + "\n")


def dump(pid: int, device: str = WIREGUARD_DEVICE) -> str:
    """`wg show <device> dump` of the wireguard-go at `pid`."""
    return _wg(pid, ["show", device, "dump"])
