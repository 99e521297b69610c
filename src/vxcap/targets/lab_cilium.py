"""The embedded lab as Cilium's (`--cni cilium`): which description to build, and which runs it refuses."""

from __future__ import annotations

from pathlib import Path

import yaml

from vxcap.core.errors import InputError


def cilium_lab(prefix: str, lab_file: Path | None, nodes: int | None, subnets: int | None, overlay: str | None):
    """The Cilium lab that exists under `prefix`, else the named (or reference) lab's nodes as Cilium's
    routing-mode tunnel over VXLAN."""
    from vxcap.core.lab.cilium import cilium_description
    from vxcap.targets.lab import LabMemory, LabSource, _parse, choose_lab, reference_lab

    if overlay not in (None, "vxlan"):
        raise InputError(f"--overlay {overlay} is one of Calico's data planes; --cni cilium builds Cilium's vxlan tunnel")
    if lab_file is None and nodes is None:
        existing = LabMemory(prefix).recall()
        if existing is not None and existing.spec.cilium is not None:
            return existing
        base = reference_lab()
    else:
        base = choose_lab(prefix, lab_file, nodes, subnets)
    text = yaml.safe_dump(cilium_description(yaml.safe_load(base.text)), sort_keys=False)
    return LabSource(_parse(text, "the lab description"), text, f"{base.origin}, Cilium vxlan tunnel")


def refuse_other_cni(spec, prefix: str, cni: str) -> None:
    """Never a Cilium lab judged as another CNI's, nor another lab as Cilium's."""
    if cni == "cilium" and spec.cilium is None:
        raise InputError(f"the lab {prefix}-* is built as {spec.dataplane}: "
                         "`vxcap lab up --cni cilium` rebuilds it as Cilium's (or `vxcap lab down` first)")
    if cni != "cilium" and spec.cilium is not None:
        raise InputError(f"the lab {prefix}-* is built as Cilium's vxlan tunnel: add --cni cilium (or --cni auto), "
                         f"or `vxcap lab up{' --cni flannel' if cni == 'flannel' else ''}` rebuilds it")
