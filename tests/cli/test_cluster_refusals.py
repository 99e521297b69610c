"""`vxcap run` on a cluster that will not start its pods: one line that names the fix, nothing left behind.

The fake behaves as a real API server and kubelet would: images not on the
nodes, a namespace enforcing Pod Security baseline, a policy engine's webhook.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from vxcap.cli.main import cli
from vxcap.core.capture import CAPTURE_IMAGE
from vxcap.exit_status import ExitStatus

NODES = ("k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3")


def run(tmp_path: Path, kubeconfig: Path, *args: str):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--pair", "worker,worker3", "--capture", "pod", "--out", str(out),
                                      "--kubeconfig", str(kubeconfig), "--ready-timeout", "300", *args])
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return result, json.loads((run_dir / "report.json").read_text())


def said(result) -> str:
    return " ".join(result.output.split())


def test_images_not_on_the_nodes_end_the_run_with_the_load_command(tmp_path, start_fake_kube):
    fake = start_fake_kube(node_images={node: set() for node in NODES})
    result, report = run(tmp_path, fake.kubeconfig)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert "Traceback" not in result.output
    (error,) = report["errors"]
    assert error.startswith("provision failed: pod vxcap-probe-")
    assert f"image {CAPTURE_IMAGE} is not on node" in error and "load it onto the nodes with `vxcap images load --kind k01`" in error
    assert "pods not Ready after" not in error
    assert "vxcap images load --kind k01" in said(result)
    assert fake.kube.pods_in("vxcap") == []


def test_pod_security_baseline_ends_the_run_with_the_label_line(tmp_path, start_fake_kube):
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "apps", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}
    fake = start_fake_kube(namespaces={"apps": namespace})
    result, report = run(tmp_path, fake.kubeconfig, "--namespace", "apps")
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    (error,) = report["errors"]
    assert "kubectl label namespace apps pod-security.kubernetes.io/enforce=privileged --overwrite" in error
    assert "--capture-namespace" in error
    assert fake.kube.pods_in("apps") == [] and fake.kube.requested("POST", "/api/v1/namespaces/apps/pods") == []
