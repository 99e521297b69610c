"""What the lab integration tests of the CNIs and data planes share: the `vxcap lab` commands on this
session's prefix, a CNI lab's fault twin (the same run passes, the fault, then it fails), and a run on a
lab built for one test. The tests keep their cases and assertions; what every one of them checks the same
way (the healthy run's exit code, the broken one's) is asserted here, once.

    from tests.lab_scaffold import CniLab

    CILIUM = CniLab("cilium")
    _, status = CILIUM.break_after_healthy_run(tmp_path, "worker,worker2", fault)
    assert problems(status)[...] == [...]
    broken = CILIUM.broken_run(tmp_path, "worker,worker2")
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from tests.lab_support import SESSION_PREFIX, flows, running_lab, session_namespaces, vxcap_run
from vxcap.exit_status import ExitStatus


def vxcap(*args: str):
    """One `vxcap` command through click's runner."""
    from vxcap.cli.main import cli

    return CliRunner().invoke(cli, list(args))


def lab_status(prefix: str = SESSION_PREFIX) -> tuple[int, dict]:
    """`vxcap lab status --json`: its exit code and what it printed."""
    result = vxcap("lab", "status", "--prefix", prefix, "--json")
    return result.exit_code, json.loads(result.output)


def problems(report: dict) -> dict[str, list[str]]:
    """A status report's failed checks by node, as `name: detail`."""
    return {n["node"]: [f"{c['name']}: {c['detail']}" for c in n["checks"] if not c["ok"]]
            for n in report["status"]["nodes"] if not n["ok"]}


def ip_json(node: str, *args: str):
    """`ip -j -d <args>` in the node's namespace: what the kernel holds, not what vxcap says of it."""
    out = subprocess.run(["ip", "-n", f"{SESSION_PREFIX}-{node}", "-d", "-j", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def observed(report: dict) -> dict[tuple[str, str], str]:
    """What each direction's wire carried (report.json's flows by direction)."""
    return {d: f["observed"] for d, f in flows(report).items()}


@contextmanager
def cli_lab(*up_options: str, down_clean: bool = False):
    """A lab made by `vxcap lab up <up_options>` on this session's prefix (`lab up` must succeed; its result is
    yielded), taken down by `vxcap lab down` whatever the block does. `down_clean`: once the block has passed,
    `lab down` must succeed too and leave no namespace of this session."""
    try:
        up = vxcap("lab", "up", *up_options, "--prefix", SESSION_PREFIX)
        assert up.exit_code == 0, up.output
        yield up
    finally:
        down = vxcap("lab", "down", "--prefix", SESSION_PREFIX)
    if down_clean:
        assert down.exit_code == 0, down.output
        assert not session_namespaces()


class CniLab:
    """The embedded lab built as one CNI's data plane (`vxcap lab up --cni <cni>`), on this session's prefix."""

    def __init__(self, cni: str) -> None:
        self.cni = cni
        self.options = ["--cni", cni]

    def up(self, *options: str) -> None:
        """(Re)build the lab healthy: also repairs what a previous test's fault left."""
        result = vxcap("lab", "up", *self.options, "--prefix", SESSION_PREFIX, *options)
        assert result.exit_code == 0, result.output
        assert "lab is healthy" in result.output

    @contextmanager
    def down_at_the_end(self) -> Iterator[None]:
        """For a module's fixture: its tests share one lab, taken down once after the last."""
        try:
            yield
        finally:
            vxcap("lab", "down", "--prefix", SESSION_PREFIX)

    def break_lab(self, fault) -> None:
        from vxcap.adapters.lab import NetnsLab
        from vxcap.targets.lab import choose_lab

        NetnsLab(choose_lab(SESSION_PREFIX, cni=self.cni).spec, prefix=SESSION_PREFIX).apply_fault(fault)

    def run(self, tmp_path, *pairs: str, more: tuple[str, ...] = ()):
        """`vxcap run --lab --cni <cni>`: (result, run_dir, report)."""
        return vxcap_run(tmp_path, *pairs, options=[*self.options, *more])

    def builds_what_it_needs(self, tmp_path, *pairs: str, more: tuple[str, ...] = ()) -> dict:
        """A run with no lab up builds the lab, passes and leaves no namespace: what each direction carried."""
        assert not session_namespaces()
        result, _, report = self.run(tmp_path, *pairs, more=more)
        assert result.exit_code == ExitStatus.SUCCESS, result.output
        assert not session_namespaces()
        return observed(report)

    def all_pairs_pass(self, tmp_path, directions: int = 12):
        """`--all-pairs` on the lab as it is: every direction passes; (run_dir, flows by direction)."""
        result, run_dir, report = self.run(tmp_path, more=("--all-pairs",))
        assert result.exit_code == ExitStatus.SUCCESS, result.output
        by_direction = flows(report)
        assert len(by_direction) == directions
        for (src, dst), flow in by_direction.items():
            assert flow["verdict"] == "pass", (src, dst, flow["reasons"])
        return run_dir, by_direction

    def break_after_healthy_run(self, tmp_path, pair: str, fault) -> tuple[dict, dict]:
        """The fault twin's first half: the run passes on the healthy lab, then `fault` is applied and
        `lab status` fails. (The healthy run's flows by direction, the status report.)"""
        result, _, healthy = self.run(tmp_path / "healthy", pair)
        assert result.exit_code == ExitStatus.SUCCESS, result.output  # the twin: the same run, before
        self.break_lab(fault)
        code, report = lab_status()
        assert code == ExitStatus.VERDICT_FAILED
        return flows(healthy), report

    def broken_run(self, tmp_path, pair: str) -> dict:
        """The fault twin's second half: the same run fails; its flows by direction."""
        result, _, report = self.run(tmp_path / "broken", pair)
        assert result.exit_code == ExitStatus.VERDICT_FAILED
        return flows(report)


# ------------------------------------------------------------------ Calico's other data planes


def by_direction(report) -> dict:
    """report.json's flows by (source node, destination node, family)."""
    return {(f["src_node"], f["dst_node"], f["family"]): f for f in report["flows"]}


def all_pass(result, report, expected_directions: int) -> None:
    assert result.exit_code == ExitStatus.SUCCESS, (result.output, [f["reasons"] for f in report["flows"]])
    assert report["verdict"] == "pass"
    assert len(report["flows"]) == expected_directions
    assert {f["verdict"] for f in report["flows"]} == {"pass"}


def healthy_run(tmp_path, spec, options: list[str], expected_directions: int, *pairs: str):
    """`vxcap run --lab <options>` on a lab built from `spec` for it (down afterwards), every direction
    passing: (run_dir, report, flows by direction and family)."""
    with running_lab(spec=spec):
        result, run_dir, report = vxcap_run(tmp_path, *pairs, options=options)
    all_pass(result, report, expected_directions)
    return run_dir, report, by_direction(report)


def failed(result, report, direction) -> list[str]:
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    flow = by_direction(report)[direction]
    assert flow["verdict"] == "fail"
    return flow["reasons"]


@contextmanager
def faulted_lab(spec, fault):
    """A healthy lab built from `spec`, then broken by `fault`; down after the block."""
    with running_lab(spec=spec) as lab:
        lab.apply_fault(fault)
        yield lab


def faulty_run(tmp_path, spec, fault, options: list[str], direction, *pairs: str) -> tuple[dict, list[str]]:
    """`vxcap run --lab <options>` on a lab built from `spec` with `fault` applied (down afterwards): the run
    fails and so does `direction`; (report, that direction's reasons)."""
    with faulted_lab(spec, fault):
        result, _, report = vxcap_run(tmp_path, *pairs, options=options)
    return report, failed(result, report, direction)


def wait_until(done: Callable[[], bool], seconds: float = 5) -> None:
    """Poll (a process's exit is not instant) until `done()` or the time is up; the caller asserts."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def wireguard_go_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "wireguard-go":
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def assert_wireguard_go_gone(pids: set[int]) -> None:
    """None of `pids` is a wireguard-go any more (after `lab down`), and no namespace of this session is left."""
    wait_until(lambda: not pids & wireguard_go_pids())
    assert not pids & wireguard_go_pids(), "wireguard-go outlived `lab down`"
    assert not session_namespaces()
