"""Least privilege and no overreach, checked on the source, the RBAC file and a real run's files."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test, session_namespaces  # noqa: F401
from vxcap.adapters.kube import manifests
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "vxcap"
RBAC = REPO / "deploy" / "rbac.yaml"

# Anything that hands a string to a shell: vxcap runs argv lists only.
SHELL = re.compile(r"shell\s*=\s*True|\bos\.system\b|\bos\.popen\b|\bos\.exec\w*p?e?\(|\bsubprocess\.getoutput\b"
                   r"|\bsubprocess\.getstatusoutput\b|\bcommands\.getoutput\b|\bpty\.spawn\b")


def test_no_shell_string_anywhere_in_the_source():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SHELL.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_shell_check_would_see_one():
    for line in ("subprocess.run(cmd, shell=True)", "os.system('ip netns list')", "os.popen('tcpdump')",
                 "subprocess.Popen(x, shell = True)"):
        assert SHELL.search(line), line


# ---------------------------------------------------------------- RBAC: nothing beyond what vxcap calls

DANGEROUS_RESOURCES = {"secrets", "nodes/proxy", "pods/attach", "pods/portforward", "serviceaccounts/token",
                       "clusterroles", "clusterrolebindings", "roles", "rolebindings", "*"}
DANGEROUS_VERBS = {"*", "escalate", "bind", "impersonate", "update", "patch", "delete"}


def rbac_rules() -> list[tuple[str, str, dict]]:
    rules = []
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if doc and doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                rules.append((doc["kind"], doc["metadata"]["name"], rule))
    return rules


def test_rbac_grants_no_wildcard_secret_or_escalation():
    for kind, name, rule in rbac_rules():
        assert not DANGEROUS_RESOURCES & set(rule["resources"]), (kind, name, rule)
        assert not DANGEROUS_VERBS & set(rule["verbs"]), (kind, name, rule)
        assert "*" not in rule["apiGroups"], (kind, name, rule)


def test_rbac_cluster_wide_rules_only_read():
    for kind, name, rule in rbac_rules():
        if kind == "ClusterRole":
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, (name, rule)


def test_rbac_writes_only_pods_and_their_exec_in_its_own_namespace():
    writes = {(r, v) for kind, _, rule in rbac_rules() for r in rule["resources"] for v in rule["verbs"]
              if v in {"create", "deletecollection"}}
    assert writes == {("pods", "create"), ("pods", "deletecollection"), ("pods/exec", "create")}
    roles = [doc for doc in yaml.safe_load_all(RBAC.read_text()) if doc and doc["kind"] == "Role"]
    assert {doc["metadata"]["namespace"] for doc in roles} == {"vxcap"}


# ---------------------------------------------------------------- capture pods: NET_RAW and NET_ADMIN, nothing more


def test_capture_pods_run_as_nobody_with_only_net_raw_and_net_admin():
    pod = manifests.capture_pod("r1", "k01-worker")
    spec = pod["spec"]
    assert spec["hostNetwork"] is True  # the node's underlay: what they are for
    assert not {"hostPID", "hostIPC", "shareProcessNamespace", "volumes", "securityContext"} & set(spec)
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert not {"volumeMounts", "volumeDevices", "ports"} & set(container)
    security = container["securityContext"]
    assert security["privileged"] is False
    assert security["runAsNonRoot"] is True and security["runAsUser"] == security["runAsGroup"] == 65534
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # Escalation stays allowed only so that exec honours tcpdump's file capabilities;
    # drop ALL keeps them to the two added (tests/integration/test_capture_pod_privileges.py).
    assert security["allowPrivilegeEscalation"] is True
    assert container["image"] == "vxcap/netshoot-lite:bookworm-v3"  # the image whose tcpdump has them


# ---------------------------------------------------------------- the run directory: pcaps hold other people's traffic


@lab_test
@pytest.mark.usefixtures("lab_session_guard")
def test_every_file_of_a_real_run_is_private(tmp_path):
    out = tmp_path / "captures"
    result = CliRunner().invoke(cli, ["run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(out),
                                      "--pair", "worker,worker3", "--count", "2"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert not session_namespaces()
    (run_dir,) = list(out.iterdir())
    seen = {"dirs": [], "files": []}
    for path in [run_dir, *sorted(run_dir.rglob("*"))]:
        info = path.lstat()
        assert not stat.S_ISLNK(info.st_mode), path
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            assert mode == 0o700, (path, oct(mode))
            seen["dirs"].append(path.relative_to(run_dir).as_posix())
        else:
            assert mode == 0o600, (path, oct(mode))
            seen["files"].append(path.relative_to(run_dir).as_posix())
        assert info.st_uid == 0 and info.st_gid == 0, path  # tcpdump did not hand the pcap to its own user
    # the walk covered what matters: pcaps, evidence, manifest, reports
    assert {".", "evidence"} <= set(seen["dirs"])
    assert {"k01-worker-eth1.pcap", "k01-worker3-eth1.pcap", "manifest.json", "report.json", "junit.xml",
            "report.html", "evidence/all-nodes.pcapng", "k01-worker-eth1.route.json"} <= set(seen["files"])
    assert any(f.startswith("evidence/") and f != "evidence/all-nodes.pcapng" for f in seen["files"])


@pytest.mark.parametrize("option,value,says", [
    pytest.param("--namespace", "Kube System", "error: --namespace 'Kube System' is not valid: a DNS-1123 label"),
    pytest.param("--iface", "eth1 -w /tmp/x",
                 "error: --iface 'eth1 -w /tmp/x' is not valid: an interface name is 1-15 characters"),
])
def test_cluster_names_from_the_command_line_are_checked_before_anything_runs(tmp_path, option, value, says):
    result = CliRunner().invoke(cli, ["run", "--pair", "worker,worker3", "--kubeconfig", str(tmp_path / "absent"),
                                      "--out", str(tmp_path / "out"), option, value])
    assert result.exit_code == ExitStatus.USAGE, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(says), result.output
    assert not (tmp_path / "out").exists()
