"""vxcap: prove with packets what a Kubernetes overlay does on the wire."""

__version__ = "0.1.0"
