"""The Kubernetes adapter: Calico discovery, test pods, and a capture backend that works on any cluster.

Only this package imports the kubernetes client. It reads API objects as plain
JSON and hands them to the pure core (vxcap.core.calico) to become a Topology.
"""

from vxcap.adapters.kube.capture import KubeCapture, KubeCaptureResult
from vxcap.adapters.kube.cluster import KubeCluster
from vxcap.adapters.kube.errors import KubeError
from vxcap.adapters.kube.exec import ExecResult
from vxcap.adapters.kube.manifests import DEFAULT_IMAGE, DEFAULT_NAMESPACE

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_NAMESPACE",
    "ExecResult",
    "KubeCapture",
    "KubeCaptureResult",
    "KubeCluster",
    "KubeError",
]
