"""Reading the cluster's nodes and Calico resources; the core turns them into a Topology."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from vxcap.adapters.kube.connection import REQUEST_TIMEOUT, Connection, cluster_name, read_json
from vxcap.adapters.kube.errors import KubeError
from vxcap.core.calico import CalicoError, CalicoObjects, Discovery, topology_from_calico
from vxcap.core.names import check_node_name

# Where Calico keeps its resources: the CRDs most installs use, then the v3 API
# (served by the Calico API server, or as CRDs by newer releases).
CALICO_GROUPS = (("crd.projectcalico.org", "v1"), ("projectcalico.org", "v3"))
CALICO_PLURALS = ("ippools", "blockaffinities", "felixconfigurations")


def _list_custom(conn: Connection, group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
    """The items, or None when the API has no such resource (404)."""
    with conn.translated(f"list {plural}.{group}/{version}"):
        try:
            listing = read_json(
                conn.custom().list_cluster_custom_object(
                    group, version, plural, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
    return list((listing or {}).get("items") or [])


def calico_resources(conn: Connection) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The first API group that serves IPPools, and its resources by plural name."""
    for group, version in CALICO_GROUPS:
        pools = _list_custom(conn, group, version, "ippools")
        if not pools:
            continue
        found = {"ippools": pools}
        for plural in CALICO_PLURALS[1:]:
            found[plural] = _list_custom(conn, group, version, plural) or []
        return f"{group}/{version}", found
    served = " nor ".join(f"{g}/{v}" for g, v in CALICO_GROUPS)
    raise KubeError(f"no Calico found in context {conn.context}: neither {served} serves any IPPool (is Calico installed?)")


def list_nodes(conn: Connection) -> list[dict[str, Any]]:
    with conn.translated("list nodes"):
        listing = read_json(conn.core().list_node(_preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    return list((listing or {}).get("items") or [])


def discover(conn: Connection) -> tuple[Discovery, str]:
    """The cluster's Topology with notes, and the Calico API group it was read from."""
    nodes = list_nodes(conn)
    group, resources = calico_resources(conn)
    objects = CalicoObjects(
        nodes=tuple(nodes),
        ippools=tuple(resources["ippools"]),
        block_affinities=tuple(resources["blockaffinities"]),
        felix_configurations=tuple(resources["felixconfigurations"]),
    )
    try:
        found = topology_from_calico(objects, cluster=cluster_name(conn.context))
    except CalicoError as err:
        raise KubeError(f"context {conn.context}: {err}") from None
    # Node names go into pod specs, pod names and file names: held to the API's own rule
    # here, so a server that breaks it (or is not what it claims) cannot steer them.
    for node in found.topology.nodes:
        check_node_name(node.name, f"context {conn.context}: node name")
    return found, group
