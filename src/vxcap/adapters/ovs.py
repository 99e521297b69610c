"""Open vSwitch in a lab node: its own ovsdb-server and ovs-vswitchd (userspace datapath).

Knows the OVS programs only. Each node's daemons run inside the node's namespace (started with
`ip netns exec`, so they see the namespace's /sys too) with every file they make in the node's own
directory (`core.lab.antrea.ovs_dir`): database, sockets, pid files, logs. Nothing of the system's
/var/run/openvswitch is used and the Debian service is never started. The daemons outlive the
`vxcap lab up` that started them (they are the node's data plane); `stop` ends them by their pid files
and removes the directory, so `lab down` leaves no process and no file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from vxcap.adapters.netns import NetnsError
from vxcap.core.errors import InputError
from vxcap.core.lab import antrea

PROGRAMS = ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl")
DAEMONS = ("ovsdb-server", "ovs-vswitchd")
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
TIMEOUT_S = 20.0


def require() -> None:
    """One line when Open vSwitch is not there to build the Antrea lab with."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing or not SCHEMA.exists():
        what = ", ".join(missing) if missing else str(SCHEMA)
        raise InputError(f"Open vSwitch is not installed (no {what}): --cni antrea needs its userspace datapath "
                         "(apt-get install openvswitch-switch)")


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv[:6])}...: {(proc.stderr or proc.stdout).strip() or proc.returncode}")
    return proc


def _in(ns: str, directory: Path, argv: list[str]) -> list[str]:
    env = [f"OVS_{key}DIR={directory}" for key in ("RUN", "DB", "LOG", "SYSCONF")]
    return ["ip", "netns", "exec", ns, "env", *env, *argv]


def start(ns: str, directory: Path) -> None:
    """A fresh database, ovsdb-server, then ovs-vswitchd, both detached with pid files in `directory`."""
    if directory.exists():  # left by a build that died before its namespace was made: ours, by its name
        stop(directory)
    directory.mkdir(mode=0o700, parents=True)
    d = str(directory)
    _run(["ovsdb-tool", "create", f"{d}/conf.db", str(SCHEMA)])
    _run(_in(ns, directory, ["ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                             f"--pidfile={d}/ovsdb-server.pid", f"--log-file={d}/ovsdb-server.log",
                             f"--unixctl={d}/ovsdb-server.ctl", "--detach", "--no-chdir"]))
    _run(["ovs-vsctl", f"--db=unix:{d}/db.sock", "--no-wait", "init"])
    _run(_in(ns, directory, ["ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid",
                             f"--log-file={d}/ovs-vswitchd.log", f"--unixctl={d}/ovs-vswitchd.ctl",
                             "--detach", "--no-chdir"]))


def _pid(directory: Path, daemon: str) -> int | None:
    try:
        pid = int((directory / f"{daemon}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop(directory: Path) -> list[int]:
    """End both daemons (TERM, then KILL whatever is still running), then remove `directory`."""
    pids = [pid for daemon in DAEMONS if (pid := _pid(directory, daemon)) is not None]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5.0
    # Detached daemons are init's children: a zombie has left its namespace, which is all that matters.
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.parent.rmdir()  # the base, once the last lab's nodes are gone
    except OSError:
        pass
    return pids


def read(directory: Path) -> dict[str, Any] | None:
    """What the node's OVS says (`core.lab.antrea.ovs_checks` reads it): daemon pids, interfaces, flows."""
    daemons = {daemon: _pid(directory, daemon) for daemon in DAEMONS}
    out: dict[str, Any] = {"daemons": daemons, "interfaces": {}, "flows": []}
    if not all(daemons.values()):
        return out
    d = str(directory)
    try:
        listing = _run(["ovs-vsctl", f"--db=unix:{d}/db.sock", "--timeout=5", "--format=json",
                        "--columns=name,type,options,ofport", "list", "interface"]).stdout
        flows = _run(["ovs-ofctl", "dump-flows", f"unix:{d}/{antrea.BR_INT}.mgmt"]).stdout
    except (NetnsError, subprocess.TimeoutExpired):
        return out
    out["interfaces"] = _interfaces(json.loads(listing))
    out["flows"] = antrea.parse_flows(flows)
    return out


def _interfaces(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ovs-vsctl's JSON table (OVSDB's ["map", [[k, v], ...]] for maps) as {name: {type, options, ofport}}."""
    headings = doc.get("headings") or []
    found = {}
    for row in doc.get("data") or []:
        values = dict(zip(headings, row))
        options = values.get("options")
        found[str(values.get("name"))] = {
            "type": values.get("type"),
            "options": dict(options[1]) if isinstance(options, list) and options and options[0] == "map" else {},
            "ofport": values.get("ofport"),
        }
    return found

