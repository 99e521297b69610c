"""`vxcap run` as a person meets it: what applies where, pairs checked before anything is
contacted, the way out when there is no cluster, and a set-up failure told as it is."""

import json

import pytest
from click.testing import CliRunner

from tests.fakes.kube_api import Fate, start_fake_kube  # noqa: F401 (fixture)
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus


def invoke(*args, env=None):
    return CliRunner(env=env).invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("args,named", [
    (["--subnets", "3"], "--subnets"),
    (["--prefix", "other"], "--prefix"),
    (["--nodes", "6"], "--nodes"),
    (["--lab", "--kubeconfig", "KUBECONFIG"], "--kubeconfig"),
    (["--lab", "--capture", "pod"], "--capture"),
    (["--lab", "--context", "prod"], "--context"),
    (["--lab", "--iface", "eth0"], "--iface"),
])
def test_an_option_that_does_not_apply_is_a_usage_error_naming_it_before_anything_is_contacted(start_fake_kube, args, named):
    fake = start_fake_kube()
    args = [str(fake.kubeconfig) if a == "KUBECONFIG" else a for a in args]
    where = [] if "--lab" in args else ["--kubeconfig", fake.kubeconfig]
    result = invoke("run", "--pair", "worker,worker3", *where, *args)
    assert result.exit_code == ExitStatus.USAGE, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: {named} ") and ("--lab" in error), error
    assert fake.kube.requests == []


@pytest.mark.parametrize("spec,says", [
    ("worker", "expected two node names separated by a comma"),
    ("worker,", "expected two node names separated by a comma"),
    ("worker,worker", "a pair needs two different nodes"),
    ("Worker,w3", "node name 'Worker' is not valid"),
    ("a,b,c", "expected two node names"),
])
def test_pair_syntax_is_checked_before_the_cluster_is_contacted(start_fake_kube, spec, says):
    fake = start_fake_kube()
    result = invoke("run", "--pair", "worker,worker3", "--pair", spec, "--kubeconfig", fake.kubeconfig)
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "Invalid value for '--pair'" in result.output and says in result.output
    assert fake.kube.requests == []


def test_without_any_kubeconfig_the_error_points_at_the_lab_and_at_doctor(tmp_path):
    result = invoke("run", "--pair", "worker,worker3", "--out", tmp_path / "out",
                    env={"HOME": str(tmp_path), "KUBECONFIG": ""})
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "error: no kubeconfig found" in result.stderr
    assert "vxcap run --lab --pair worker,worker3" in result.stderr and "vxcap doctor" in result.stderr
    assert "Traceback" not in result.output


def test_a_setup_failure_says_why_and_names_only_what_the_run_directory_holds(tmp_path, start_fake_kube):
    fake = start_fake_kube(fates={"k01-worker3": Fate(kind="pending")})
    result = invoke("run", "--pair", "worker,worker3", "--kubeconfig", fake.kubeconfig, "--capture", "pod",
                    "--ready-timeout", "1", "--out", tmp_path / "out")
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict.startswith("FAIL no direction was judged: provision failed: pods not Ready after 1s"), verdict
    assert "0/0" not in result.stdout
    (run_dir,) = (tmp_path / "out").iterdir()
    assert verdict.endswith(f"{run_dir}/ (report.json, junit.xml)"), verdict
    assert not (run_dir / "report.html").exists() and not list(run_dir.glob("*.pcap"))
    assert fake.kube.pods_in("vxcap") == []


def test_quiet_prints_the_verdict_line_only_and_json_only_json(tmp_path, start_fake_kube):
    fake = start_fake_kube(fates={"k01-worker3": Fate(kind="pending")})
    common = ["run", "--pair", "worker,worker3", "--kubeconfig", fake.kubeconfig, "--capture", "pod",
              "--ready-timeout", "1", "--out", tmp_path / "out"]
    quiet = invoke(*common, "--quiet")
    assert quiet.exit_code == ExitStatus.VERDICT_FAILED
    assert len(quiet.stdout.splitlines()) == 1 and quiet.stdout.startswith("FAIL ")
    assert quiet.stderr == ""  # no progress either
    as_json = invoke(*common, "--json")
    assert json.loads(as_json.stdout)["verdict"] == "fail"


def test_help_stays_instant_nothing_heavy_is_imported():
    import subprocess
    import sys

    code = ("import sys\nfrom vxcap.cli.main import cli\n"
            "for args in (['--help'], ['run', '--help'], ['doctor', '--help']):\n"
            "    try:\n        cli(args, prog_name='vxcap')\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('rich', 'kubernetes', 'scapy', 'docker', 'vxcap.pipeline') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_topology_without_a_kubeconfig_points_at_the_lab(tmp_path):
    result = invoke("topology", env={"HOME": str(tmp_path), "KUBECONFIG": ""})
    assert result.exit_code == ExitStatus.USAGE
    assert "vxcap topology --lab" in result.stderr and "vxcap doctor" in result.stderr
