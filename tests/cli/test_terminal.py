"""vxcap as a person sees it: each command run in tmux on a real terminal size, the pane
captured and compared with a golden screen (tests/cli/screens/), run-specific parts masked.

VXCAP_UPDATE_SCREENS=1 rewrites the golden screens from what the program prints now.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test  # noqa: F401

SCREENS = Path(__file__).parent / "screens"
WIDTH, HEIGHT = 160, 50
DONE = "__vxcap_exit__"
TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")

# What differs from run to run: ids, timings, temporary paths, the lab prefix, the host.
MASKS = [
    (re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}"), "<run-id>"),
    (re.compile(r"\b\d+\.\ds\b"), "<t>s"),
    (re.compile(r"/tmp/\S*?/out/"), "<out>/"),
    (re.compile(r"/tmp/\S*?/\.kube/config"), "<home>/.kube/config"),
    (re.compile(re.escape(SESSION_PREFIX)), "<prefix>"),
    (re.compile(r"(packets captured: [^)]*)"), lambda m: re.sub(r" \d+", " <n>", m.group(1))),
    (re.compile(r"(kernel VXLAN support\s+vxlan \S+ \S+ ?\S* ?\S* ?)\(\S+\)"), r"\1(<kernel>)"),
]


def mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines()) + "\n"


def in_tmux(command: list[str], tmp_path: Path, timeout: float = 120) -> tuple[str, int]:
    """Run `command` in a detached tmux pane of WIDTH x HEIGHT; (the pane's text, exit status)."""
    socket = f"vxcap-test-{secrets.token_hex(3)}"
    shell = f"{shlex.join(command)}; echo {DONE} $?; sleep 600"
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(WIDTH), LINES=str(HEIGHT))
    env.pop("NO_COLOR", None)
    tmux = [TMUX, "-L", socket, "-f", "/dev/null"]
    subprocess.run(tmux + ["new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(tmp_path), shell],
                   check=True, env=env)
    try:
        # Counted polls, not a clock deadline: this also holds where the clock jumps.
        for _ in range(int(timeout / 0.2)):
            pane = subprocess.run(tmux + ["capture-pane", "-p", "-J", "-S", "-", "-E", "-"],
                                  capture_output=True, text=True, check=True).stdout
            found = re.search(rf"^{DONE} (\d+)$", pane, flags=re.M)
            if found:
                return pane[: found.start()], int(found.group(1))
            time.sleep(0.2)
        raise AssertionError(f"still running after {timeout} s:\n{pane}")
    finally:
        subprocess.run(tmux + ["kill-server"], check=False, capture_output=True)


def vxcap() -> list[str]:
    return [sys.executable, "-m", "vxcap"]


def same_screen(name: str, pane: str) -> None:
    golden = SCREENS / f"{name}.txt"
    shown = mask(pane)
    if os.environ.get("VXCAP_UPDATE_SCREENS"):
        golden.write_text(shown)
    assert golden.is_file(), f"no golden screen {golden}: run with VXCAP_UPDATE_SCREENS=1 and read it"
    assert shown == golden.read_text(), f"{name} changed; if meant, VXCAP_UPDATE_SCREENS=1:\n{shown}"


@needs_tmux
def test_run_help_screen(tmp_path):
    pane, status = in_tmux(vxcap() + ["run", "--help"], tmp_path)
    assert status == 0
    same_screen("run-help", pane)


@needs_tmux
def test_no_cluster_screen(tmp_path):
    command = ["env", "KUBECONFIG=", f"HOME={tmp_path}"] + vxcap() + ["run", "--pair", "worker,worker3"]
    pane, status = in_tmux(command, tmp_path)
    assert status == 2
    same_screen("run-no-cluster", pane)


@needs_tmux
@lab_test
def test_doctor_lab_screen(tmp_path):
    pane, status = in_tmux(vxcap() + ["doctor", "--lab"], tmp_path)
    assert status == 0
    same_screen("doctor-lab", pane)


@needs_tmux
@lab_test
def test_lab_run_screen(tmp_path, lab_session_guard):
    command = vxcap() + ["run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path / "out"),
                         "--pair", "worker,worker3", "--pair", "worker,worker2"]
    pane, status = in_tmux(command, tmp_path)
    assert status == 0, pane
    same_screen("run-lab", pane)


def test_the_readme_shows_the_lab_run_screen_as_vxcap_prints_it():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"^```\n(✓ discover .*?)^```", readme, flags=re.M | re.S)
    assert len(blocks) == 1, "the README's sample screen is the block that starts with '✓ discover'"
    shown = blocks[0].replace("namespaces vxcap-*", "namespaces <prefix>-*").replace(" captures/", " <out>/")
    assert mask(shown) == (SCREENS / "run-lab.txt").read_text()


def test_shell_completion_is_clicks_and_completes_commands_and_options():
    def complete(words, cword):
        env = dict(os.environ, _VXCAP_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
        return subprocess.run(vxcap(), env=env, capture_output=True, text=True).stdout.split()

    assert "plain,doctor" in complete("vxcap do", 1)
    assert {"plain,--capture", "plain,--capture-image"} <= set(complete("vxcap run --cap", 2))
