"""Every top-level module of vxcap is in the import-linter layers contract: one left out
would have nothing checking what it imports."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_top_level_module_sits_in_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    layered = {name.strip() for layer in layers["layers"] for name in re.split(r"[|:]", layer)}
    package = ROOT / "src" / "vxcap"
    top_level = {f"vxcap.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    top_level |= {f"vxcap.{p.name}" for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert top_level - layered == set()
