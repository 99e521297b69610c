"""The local machine, as `vxcap doctor` asks about it: who we are, which tools are on
PATH, and whether the kernel can make VXLAN devices. Reads only; changes nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def euid() -> int:
    return os.geteuid()


def proc_status() -> str:
    try:
        return Path("/proc/self/status").read_text()
    except OSError:
        return ""


def which(name: str) -> str | None:
    # Root's PATH may lack the sbin directories where tcpdump and ip live on some systems.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def kernel_release() -> str:
    return os.uname().release


def vxlan_support(release: str | None = None, root: Path = Path("/")) -> str | None:
    """'loaded', 'builtin', 'module' (loadable on demand), or None, from /sys and /lib/modules."""
    release = release or kernel_release()
    if (root / "sys/module/vxlan").is_dir():
        return "loaded"
    modules = root / "lib/modules" / release
    for name, state in (("modules.builtin", "builtin"), ("modules.dep", "module")):
        try:
            text = (modules / name).read_text()
        except OSError:
            continue
        if any(line.split(":", 1)[0].rsplit("/", 1)[-1].startswith("vxlan.ko") for line in text.splitlines()):
            return state
    return None
