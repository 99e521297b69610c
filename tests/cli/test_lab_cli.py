"""`vxcap lab up|down|status` through click's runner, on real namespaces."""

import pytest
from click.testing import CliRunner

from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test, session_namespaces  # noqa: F401
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus
from vxcap.targets.lab import LabMemory

pytestmark = pytest.mark.usefixtures("lab_session_guard")


def vxcap(*args):
    return CliRunner().invoke(cli, [*args, "--prefix", SESSION_PREFIX])


@lab_test
def test_up_status_down_cycle():
    try:
        assert vxcap("lab", "status").exit_code == ExitStatus.VERDICT_FAILED
        up = vxcap("lab", "up")
        assert up.exit_code == 0, up.output
        assert "lab is healthy" in up.output
        assert len(session_namespaces()) == 9  # switch + 4 nodes + 4 pods
        again = vxcap("lab", "up")  # idempotent
        assert again.exit_code == 0 and len(session_namespaces()) == 9
        assert vxcap("lab", "status").exit_code == 0
    finally:
        down = vxcap("lab", "down")
    assert down.exit_code == 0 and "removed 9 namespace(s)" in down.output
    assert not session_namespaces()
    assert LabMemory(SESSION_PREFIX).recall() is None


@lab_test
def test_a_generated_lab_is_remembered_and_replaced_cleanly(tmp_path):
    try:
        assert vxcap("lab", "up", "--nodes", "6", "--subnets", "3").exit_code == 0
        assert len(session_namespaces()) == 13
        # status and run act on the lab that exists, without repeating its shape
        assert vxcap("lab", "status").exit_code == 0
        run = CliRunner().invoke(cli, ["run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path),
                                       "--pair", "worker5,control-plane", "--count", "1"])
        assert run.exit_code == 0, run.output
        assert "k01-worker5 → k01-control-plane" in run.output
        # building the reference lab under the same prefix replaces the generated one
        ref = CliRunner().invoke(cli, ["lab", "up", "--prefix", SESSION_PREFIX, "--lab-file", "topology/k01-lab.yaml"])
        assert ref.exit_code == 0, ref.output
        assert len(session_namespaces()) == 9
        assert not any("worker5" in ns for ns in session_namespaces())
    finally:
        vxcap("lab", "down")
    assert not session_namespaces()


@lab_test
def test_lab_file_and_nodes_do_not_mix():
    result = CliRunner().invoke(cli, ["lab", "up", "--nodes", "4", "--lab-file", "topology/k01-lab.yaml"])
    assert result.exit_code == ExitStatus.USAGE
    assert "either --lab-file or --nodes/--subnets, not both" in result.output


@lab_test
def test_unknown_node_is_a_usage_error_and_leaves_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path),
                                      "--pair", "worker,worker9"])
    assert result.exit_code == ExitStatus.USAGE
    assert "unknown node 'worker9'; nodes: k01-control-plane, k01-worker, k01-worker2, k01-worker3" in result.output
    assert "Traceback" not in result.output
    assert not session_namespaces()


def test_run_without_a_pair_is_a_usage_error():
    result = CliRunner().invoke(cli, ["run", "--lab"])
    assert result.exit_code == ExitStatus.USAGE and "--pair" in result.output


@lab_test
def test_direct_routing_is_flannels_and_says_so():
    result = CliRunner().invoke(cli, ["lab", "up", "--direct-routing", "--prefix", SESSION_PREFIX])
    assert result.exit_code == ExitStatus.USAGE
    assert "--direct-routing/--no-direct-routing is Flannel's: add --cni flannel" in result.output
    assert not session_namespaces()


def test_lab_up_help_teaches_flannels_options():
    result = CliRunner().invoke(cli, ["lab", "up", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--direct-routing / --no-direct-routing" in text
    assert "UDP 8472 (the kernel's default port)" in text and "off (Flannel's default) always VXLAN" in text
