"""The fake API's pods backed by the namespace lab (tests/lab_support.py), as root processes.

A test pod execs in its node's lab pod namespace and has that pod's IP, so a
`kubectl exec`-style ping is a real ping over the kernel's VXLAN; a hostNetwork
pod execs in the node's namespace. The pods' securityContext is not honoured:
tests/fakes/docker_pods.py runs pods that must be held to theirs.
"""

from __future__ import annotations

from tests.fakes.kube_api import ProcessRuntime
from vxcap.adapters.kube.manifests import ROLE_LABEL
from vxcap.adapters.lab import NetnsLab


class LabPods(ProcessRuntime):
    """The fake's pods, backed by the lab. A test pod execs in its node's lab pod
    namespace and has that pod's IP; a hostNetwork pod execs in the node's namespace."""

    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab
        self.started: list[tuple[str, str]] = []  # (role, node) of every pod that became Running
        super().__init__(prefix=self._netns_exec, on_start=self._on_start)

    def _netns_exec(self, pod: dict) -> list[str]:
        node = pod["spec"]["nodeName"]
        netns = self.lab.node_netns(node) if pod["spec"].get("hostNetwork") else self.lab.pod_netns(node)
        return ["ip", "netns", "exec", netns]

    def _on_start(self, pod: dict) -> dict | None:
        node = pod["spec"]["nodeName"]
        self.started.append((pod["metadata"]["labels"][ROLE_LABEL], node))
        if pod["spec"].get("hostNetwork"):
            return None  # the fake gives it the node's address, as the kubelet does
        ip = str(self.lab.pod(node).ip)
        return {"podIP": ip, "podIPs": [{"ip": ip}]}
