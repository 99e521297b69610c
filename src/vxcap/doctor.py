"""`vxcap doctor`: ask the host, the cluster and Docker what a run needs, through the
adapters; core.doctor judges each answer. Reads only: nothing is created anywhere."""

from __future__ import annotations

from vxcap.core.doctor import (
    NEEDED,
    Check,
    Level,
    effective_capabilities,
    image_on_nodes,
    kernel_vxlan,
    permission_check,
    privileges,
    rbac_summary,
    tool,
)
from vxcap.core.errors import VxcapError


def lab_checks() -> list[Check]:
    from vxcap.adapters import host

    release = host.kernel_release()
    return [
        privileges(host.euid(), effective_capabilities(host.proc_status())),
        tool("tcpdump", host.which("tcpdump"), "tcpdump"),
        tool("ip", host.which("ip"), "iproute2"),
        kernel_vxlan(host.vxlan_support(release), release),
    ]


def _skipped(names: list[str], because: str) -> list[Check]:
    return [Check(name, Level.SKIP, f"not checked: {because}") for name in names]


LATER = ["RBAC permissions", "Calico found", "Docker reachable", "capture image"]


def cluster_checks(kubeconfig: str | None, context: str | None, namespace: str, capture_image: str,
                   capture_namespace: str | None = None) -> list[Check]:
    from vxcap.adapters.kube import access
    from vxcap.adapters.kube.connection import connect

    checks: list[Check] = []
    try:
        conn = connect(kubeconfig, context)
    except VxcapError as err:
        checks.append(Check("kubeconfig", Level.FAIL, str(err),
                            "give --kubeconfig and --context; no cluster at all? `vxcap doctor --lab` checks the embedded lab"))
        return checks + _skipped(["API server reachable", *LATER], "no kubeconfig")
    try:
        checks.append(Check("kubeconfig", Level.OK, f"context {conn.context}"))
        try:
            version = access.server_version(conn)
        except VxcapError as err:
            checks.append(Check("API server reachable", Level.FAIL, str(err),
                                f"is the cluster up? try `kubectl --context {conn.context} get nodes`"))
            return checks + _skipped(LATER, "the API server did not answer")
        checks.append(Check("API server reachable", Level.OK, f"{conn.server} ({version})"))
        checks += _permissions(conn, namespace)
        checks.append(_calico(kubeconfig, context, namespace))
        checks.append(_capture_namespace(conn, capture_namespace or namespace))
        checks += _captures(conn, capture_image)
    finally:
        conn.close()
    return checks


def _permissions(conn, namespace: str) -> list[Check]:
    from vxcap.adapters.kube import access

    checks = []
    for permission in NEEDED:
        answers = {}
        for group in permission.groups:
            try:
                answers[group] = access.can_i(conn, permission.verb, permission.resource, group,
                                              permission.subresource, namespace if permission.namespaced else "")
            except VxcapError as err:
                answers[group] = (False, str(err))
        checks.append(permission_check(permission, namespace, answers))
    return rbac_summary(checks)


def _capture_namespace(conn, name: str) -> Check:
    """Capture pods need Pod Security `privileged` where they run: asked of the namespace object."""
    from vxcap.adapters.kube import access
    from vxcap.adapters.kube.namespaces import capture_admission

    check = "capture pods admitted"
    try:
        found = access.namespace(conn, name)
    except VxcapError as err:
        return Check(check, Level.SKIP, f"not checked: {err}")
    if found is None:
        return Check(check, Level.OK, f"namespace {name} does not exist yet: vxcap creates it, labelled privileged")
    problem = capture_admission(found)
    if problem is None:
        return Check(check, Level.OK, f"namespace {name} admits them")
    why, ours = problem
    return Check(check, Level.WARN if ours else Level.FAIL, why,
                 "" if ours else "relabel the namespace, or pass --capture-namespace")


def _calico(kubeconfig: str | None, context: str | None, namespace: str) -> Check:
    from vxcap.adapters.kube import KubeCluster

    cluster = KubeCluster(kubeconfig, context, namespace=namespace)
    try:
        topology = cluster.discover()
    except VxcapError as err:
        return Check("Calico found", Level.FAIL, str(err), "vxcap reads Calico's IPPools, block affinities and "
                                                          "FelixConfiguration; is Calico installed, in VXLAN mode?")
    finally:
        cluster.close()
    overlay = topology.overlay
    return Check("Calico found", Level.OK, f"{len(topology.nodes)} nodes, vxlanMode {overlay.mode.value}, "
                                           f"VNI {overlay.vni}, UDP {overlay.port} ({cluster.calico_group})")


def _captures(conn, image: str) -> list[Check]:
    """Docker-backed captures (Kind/containerlab node containers) need the image in the local
    engine; capture pods need it on the nodes (or pullable there)."""
    from vxcap.adapters.docker_capture import DockerCaptureError, DockerCaptures
    from vxcap.adapters.kube import access

    try:
        node_objects = access.nodes(conn)
    except VxcapError as err:
        return [Check("capture image", Level.SKIP, f"not checked: {err}")]
    names = [str(n["metadata"]["name"]) for n in node_objects]
    docker = DockerCaptures(image=image)
    checks = []
    try:
        try:
            docker.ping()
        except DockerCaptureError as err:
            return [Check("Docker reachable", Level.WARN, f"{err}",
                          "only needed for Kind/containerlab nodes (--capture docker); --capture pod works anywhere"),
                    image_on_nodes(node_objects, image)]
        in_docker = [name for name in names if docker.node_container_running(name)]
        checks.append(Check("Docker reachable", Level.OK, f"{docker.address}; node containers here: "
                                                            f"{len(in_docker)} of {len(names)}"))
        if in_docker:
            try:
                docker.require_image()
                checks.append(Check("capture image in Docker", Level.OK, f"{image} in the local engine"))
            except DockerCaptureError as err:
                checks.append(Check("capture image in Docker", Level.FAIL, str(err),
                                    "bash scripts/build-capture-image, or pass --capture-image"))
        others = [n for n in node_objects if n["metadata"]["name"] not in in_docker]
        if others:
            checks.append(image_on_nodes(others, image))
    finally:
        docker.close()
    return checks
