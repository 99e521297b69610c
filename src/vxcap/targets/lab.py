"""The embedded lab as a run target: network namespaces and the kernel's VXLAN.

The lab's pods exist as long as the lab does, so provisioning only looks them
up. A run that finds no lab builds one and removes it again afterwards (unless
asked to keep it), so `vxcap run --lab` leaves the machine as it found it.
"""

from __future__ import annotations

from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path

import yaml

from vxcap.core.errors import InputError
from vxcap.core.labspec import LabSpec, lab_from_dict
from vxcap.core.model import Pod, Topology

DEFAULT_PREFIX = "vxcap"


def load_lab_spec(path: Path | None = None) -> LabSpec:
    """The lab file at `path`, or the reference lab shipped with vxcap."""
    if path is None:
        text = resources.files("vxcap").joinpath("labs/k01.yaml").read_text()
        where = "the embedded lab file"
    else:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise InputError(f"cannot read lab file {path}: {err.strerror}") from None
        where = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{where} is not YAML: {str(err).splitlines()[0]}") from None
    return lab_from_dict(data)


class LabTarget:
    def __init__(self, spec: LabSpec, prefix: str = DEFAULT_PREFIX, keep: bool = False) -> None:
        from vxcap.adapters.lab import NetnsLab

        self.spec = spec
        self.lab = NetnsLab(spec, prefix=prefix)
        self.keep = keep
        self.built_here = False
        self.description = f"embedded lab {spec.cluster} (network namespaces, prefix {prefix})"

    def discover(self) -> Topology:
        # A complete lab is used as it is, even when its configuration drifted:
        # judging a broken data plane is the point. Only a missing lab is built
        # (and removed after), and a half-built one (a crashed build) repaired.
        status = self.lab.status()
        if not status.exists:
            self.lab.up()
            self.built_here = True
        elif not all(ns.exists for ns in status.namespaces):
            self.lab.up()
        return self.spec.topology

    def provision(self, nodes: tuple[str, ...]) -> dict[str, Pod]:
        return {node: self.spec.pod_on(node) for node in nodes}

    def underlay_iface(self, node: str) -> str:
        return self.spec.underlay_iface

    def start_capture(self, node: str, path: Path, bpf: str):
        from vxcap.core.capture import DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN

        return self.lab.start_capture(node, path, bpf, snaplen=DEFAULT_SNAPLEN, max_packets=DEFAULT_MAX_PACKETS)

    def ping(self, src_node: str, dst_ip: IPv4Address, count: int):
        return self.lab.ping(src_node, dst_ip, count=count)

    def evidence(self, node: str) -> dict[str, str]:
        return self.lab.evidence(node)

    def release(self) -> None:
        if self.built_here and not self.keep:
            self.lab.down()
