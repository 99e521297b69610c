"""scripts/build-capture-image picks a Debian mirror on any host, and both builds install one package list.

The mirror choice runs as the script itself (`--print-mirror`) against another
host's /etc/os-release and /etc/apt, written here: nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-capture-image"
IMAGE_DIR = ROOT / "images" / "netshoot-lite"
DEBIAN_DEFAULT = "http://deb.debian.org/debian"

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
UBUNTU = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n'

DEB822_DEBIAN = """\
Types: deb
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
"""
DEB822_SECURITY_FIRST = """\
Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
"""
DEB822_UBUNTU = """\
Types: deb
URIs: http://azure.archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main universe restricted multiverse
"""
LIST_WITH_OPTIONS = (
    "# a comment\n"
    "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.example.net/debian bookworm main\n"
    "deb http://security.debian.org/debian-security bookworm-security main\n"
)


def host(tmp_path: Path, os_release: str, sources: dict[str, str]) -> dict[str, str]:
    (tmp_path / "os-release").write_text(os_release)
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    for name, text in sources.items():
        (apt / name).write_text(text)
    return {"VXCAP_OS_RELEASE": str(tmp_path / "os-release"), "VXCAP_APT_DIR": str(apt)}


def chosen(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "VXCAP_DEBIAN_MIRROR"}
    done = subprocess.run([str(SCRIPT), "--print-mirror"], env={**clean, **env}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


HOSTS = {
    "debian deb822": (DEBIAN, {"sources.list.d/debian.sources": DEB822_DEBIAN}, "http://mirror.example.org/debian"),
    "debian, security stanza first": (
        DEBIAN,
        {"sources.list.d/a-security.sources": DEB822_SECURITY_FIRST, "sources.list.d/debian.sources": DEB822_DEBIAN},
        "http://mirror.example.org/debian",
    ),
    "debian sources.list with options": (DEBIAN, {"sources.list": LIST_WITH_OPTIONS}, "http://ftp.example.net/debian"),
    "debian without sources": (DEBIAN, {}, DEBIAN_DEFAULT),
    # The case that broke: an Ubuntu runner's archive holds no bookworm.
    "ubuntu deb822": (UBUNTU, {"sources.list.d/ubuntu.sources": DEB822_UBUNTU}, DEBIAN_DEFAULT),
    "ubuntu sources.list": (UBUNTU, {"sources.list": "deb http://archive.ubuntu.com/ubuntu noble main\n"}, DEBIAN_DEFAULT),
    "no os-release": ("", {"sources.list.d/debian.sources": DEB822_DEBIAN}, DEBIAN_DEFAULT),
}


@pytest.mark.parametrize("os_release,sources,expected", HOSTS.values(), ids=HOSTS.keys())
def test_the_mirror_is_a_debian_mirror_on_any_host(tmp_path, os_release, sources, expected):
    assert chosen(host(tmp_path, os_release, sources)) == expected


@pytest.mark.parametrize("os_release", [DEBIAN, UBUNTU], ids=["debian", "ubuntu"])
def test_an_explicit_mirror_wins(tmp_path, os_release):
    env = host(tmp_path, os_release, {"sources.list.d/debian.sources": DEB822_DEBIAN})
    assert chosen({**env, "VXCAP_DEBIAN_MIRROR": "http://local.example/debian"}) == "http://local.example/debian"


def package_list() -> list[str]:
    return [line.strip() for line in (IMAGE_DIR / "packages").read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_both_builds_install_the_one_package_list():
    packages = package_list()
    # What the pods run: tcpdump (capture), ping/ip/python3 (test pods), pkill (stop), setcap/getcap.
    assert {"tcpdump", "iproute2", "iputils-ping", "procps", "python3", "libcap2-bin"} <= set(packages)
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    assert "COPY packages " in dockerfile and "xargs apt-get install" in dockerfile
    assert re.search(r"^FROM \$\{BASE\}$", dockerfile, re.M) and "ARG BASE=debian:bookworm-slim" in dockerfile
    assert "setcap cap_net_raw,cap_net_admin=eip /usr/bin/tcpdump" in dockerfile
    script = SCRIPT.read_text()
    assert "images/netshoot-lite/packages" in script
    assert "setcap cap_net_raw,cap_net_admin=eip" in script
    # Test pods drop ALL: a ping with file capabilities could not even be exec'd (tests/integration/test_pod_images.py).
    assert "setcap -r /usr/bin/ping" in dockerfile and 'setcap -r "$work/rootfs/usr/bin/ping"' in script


def test_the_script_and_vxcap_name_the_same_image():
    from vxcap.core.capture import CAPTURE_IMAGE

    default = re.search(r"^image=\$\{VXCAP_CAPTURE_IMAGE:-([^}]+)\}$", SCRIPT.read_text(), re.M)
    assert default and default.group(1) == CAPTURE_IMAGE
