"""The userspace data-plane processes this process started (the IP-in-IP forwarder, wireguard-go).

They outlive the call that started them (`lab down` kills them by their namespace), but a killed
child stays a zombie until its parent waits for it: one registry, so `lab down` collects them all.
"""

from __future__ import annotations

import subprocess

_children: dict[int, subprocess.Popen] = {}


def register(proc: subprocess.Popen) -> None:
    """Remember `proc`, started by this process and left running, so that `reap` can collect its exit."""
    _children[proc.pid] = proc


def reap(killed: tuple[int, ...] | list[int]) -> None:
    """Collect the exit of the children this process started and `killed` names (no zombies left);
    one that has not exited within 5 s stays registered for a later reap."""
    for pid in killed:
        proc = _children.pop(pid, None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _children[pid] = proc
