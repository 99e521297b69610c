"""Which Antrea lab a command means: `choose_lab`'s branch for `--cni antrea`, kept apart from it."""

from __future__ import annotations

from pathlib import Path

import yaml

from vxcap.core.errors import InputError
from vxcap.core.lab.antrea import antrea_description
from vxcap.targets.lab import LabMemory, LabSource, _parse, choose_lab, reference_lab


def antrea_lab(prefix: str, lab_file: Path | None, nodes: int | None, subnets: int | None, overlay: str | None,
               encap_mode: str | None) -> LabSource:
    """The Antrea lab that exists (when `encap_mode` is None or its own), else the reference lab, the lab
    file or a generated one rebuilt as Antrea's Geneve in `encap_mode` (encap | hybrid, encap when None)."""
    if overlay is not None:
        raise InputError(f"--overlay {overlay} is one of Calico's data planes; --cni antrea builds Antrea's Geneve")
    existing = LabMemory(prefix).recall() if lab_file is None and nodes is None else None
    if existing is not None and existing.spec.antrea is not None and (
            encap_mode is None or existing.spec.antrea.hybrid == (encap_mode == "hybrid")):
        return existing
    base = choose_lab(prefix, lab_file, nodes, subnets) if (lab_file or nodes) else reference_lab()
    mode = encap_mode or "encap"
    text = yaml.safe_dump(antrea_description(yaml.safe_load(base.text), mode == "hybrid"), sort_keys=False)
    return LabSource(_parse(text, "the lab description"), text, f"{base.origin}, Antrea Geneve (trafficEncapMode {mode})")
