"""A Kubernetes cluster as the run target: Calico, or (`cni`) Flannel, Cilium or Antrea.

Discovery and test pods go through the Kubernetes API (another CNI's promises become the run's
Topology in `core.cni.topology`); node captures through one
of two backends: Docker (Kind and containerlab nodes are containers named after
the node) or a hostNetwork capture pod (any cluster). `auto` picks Docker for a
node when the local engine runs a container of that name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from enum import StrEnum
from ipaddress import IPv4Address
from pathlib import Path

from vxcap.core.capture import CAPTURE_IMAGE, DEFAULT_DURATION_S, DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN
from vxcap.core import rundir
from vxcap.core.errors import InputError, VxcapError
from vxcap.core.model import Pod, Topology
from vxcap.targets import fan_out

# A capture nobody stops (vxcap killed hard, --keep, a pkill that failed) still ends
# by itself: `timeout` in the pod bounds it to what the run can need (a base, and a
# share per ordered node pair for its probes), never more than the ceiling.
CAPTURE_DEADLINE_S = DEFAULT_DURATION_S
CAPTURE_BASE_S = 120.0
CAPTURE_PER_DIRECTION_S = 10.0


def capture_deadline(nodes: int) -> float:
    return min(CAPTURE_DEADLINE_S, CAPTURE_BASE_S + CAPTURE_PER_DIRECTION_S * nodes * max(0, nodes - 1))
# The test image's interpreter for the TCP exchange (vxcap's image ships python3).
POD_PYTHON = "python3"
POD_LINK_ARGV = ["ip", "-d", "-j", "link", "show"]
_EXEC_MARGIN_S = 15.0


class CaptureBackend(StrEnum):
    AUTO = "auto"
    DOCKER = "docker"
    POD = "pod"


class ClusterTarget:
    def __init__(
        self,
        run_id: str,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str = "vxcap",
        image: str | None = None,
        capture: CaptureBackend = CaptureBackend.AUTO,
        capture_image: str | None = None,
        iface: str = "eth1",
        keep: bool = False,
        ready_timeout: float = 60.0,
        capture_namespace: str | None = None,
        on_wait: Callable[[str], None] | None = None,
        max_parallel: int = 8,
        api_qps: float | None = 50.0,
        cni: str = "calico",
    ) -> None:
        from vxcap.adapters.kube import DEFAULT_IMAGE, KubeCluster
        from vxcap.adapters.kube.batching import Limits

        def batch_done(created: int, total: int, batch: int) -> None:
            if on_wait is not None and total > Limits().batch:  # a few pods need no running count
                on_wait(f"pods created {created}/{total} (batch {batch})")

        self.run_id = run_id
        self.cni = cni
        self.on_wait = on_wait
        self._notes: tuple[str, ...] | None = None  # another CNI's discovery notes (Calico's are the adapter's)
        self.max_parallel = max_parallel
        self.cluster = KubeCluster(kubeconfig, context, namespace=namespace, image=image or DEFAULT_IMAGE,
                                   capture_namespace=capture_namespace, on_wait=on_wait,
                                   limits=Limits(max_parallel=max_parallel, qps=api_qps), progress=batch_done)
        self.capture = CaptureBackend(capture)
        self.capture_image = capture_image
        self.iface = iface
        self.keep = keep
        self.ready_timeout = ready_timeout
        self.pods: dict[str, Pod] = {}
        self._docker = None
        self._backend_of: dict[str, CaptureBackend] = {}
        self._capture_pod_failures: dict[str, VxcapError] = {}
        self._capture_deadline = CAPTURE_DEADLINE_S
        # What release() must undo. Set before the first call that may create
        # something, so a run that made nothing never contacts the cluster or
        # Docker again on its way out (and their error cannot mask the run's).
        self._may_have_pods = False
        self._may_have_containers = False
        self.description = "Kubernetes cluster (kubeconfig)" if kubeconfig is None else f"Kubernetes cluster ({kubeconfig})"

    @property
    def notes(self) -> tuple[str, ...]:
        return self.cluster.notes if self._notes is None else self._notes

    def _docker_captures(self):
        if self._docker is None:
            from vxcap.adapters.docker_capture import DockerCaptures

            self._docker = DockerCaptures(image=self.capture_image or CAPTURE_IMAGE, run_id=self.run_id)
        return self._docker

    def discover(self) -> Topology:
        if self.cni == "calico":
            topology = self.cluster.discover()
        else:
            topology = self._discover_cni()
        self.description = self.cluster.description
        if self.capture is CaptureBackend.DOCKER:
            self._docker_captures().ping()  # Docker unreachable is a usage error, said before anything is made
        return topology

    def _discover_cni(self) -> Topology:
        """`--cni auto|flannel|cilium|antrea`: the CNI discovery finds, as the run path's Topology."""
        from vxcap.adapters.kube.cni import discover as discover_cni
        from vxcap.core.cni import Cni
        from vxcap.core.cni.topology import topology_of

        found = discover_cni(self.cluster.conn, self.cni)
        if found.cni is Cni.CALICO:
            assert found.calico is not None
            self._notes = found.notes
            return found.calico.topology
        assert found.other is not None
        self._notes = (f"{found.cni.value}: {found.other.summary} ({found.other.source})",) + found.notes
        return topology_of(found.other, cluster=self.cluster.cluster)

    def settle(self, topology: Topology, pods: dict[str, Pod]) -> Topology:
        """What only the provisioned run can tell, bound before anything is captured: the senders'
        underlay subnets from their route tables (Flannel's DirectRouting, Antrea's hybrid), and each
        test pod's Cilium security identity, its packets' VNI (from its CiliumEndpoint)."""
        from vxcap.core.cni.topology import needs_route_tables, with_identities, with_route_tables

        if needs_route_tables(topology):
            senders = tuple(pods)
            read = fan_out(self._routes, senders, workers=self.max_parallel)
            tables = {node: routes for node, routes in zip(senders, read) if not isinstance(routes, VxcapError)}
            topology = with_route_tables(topology, tables, senders)
        if topology.overlay.vni_identity:
            topology = with_identities(topology, self._endpoints_of(pods), pods)
            bound = ", ".join(f"{n.name} {n.vni}" for n in topology.nodes if n.vni is not None)
            # Discovery's "not read yet" is answered now: say what each sender's VNI must be.
            self._notes = tuple(n for n in self.notes if not n.startswith("no CiliumEndpoint read yet")) + (
                f"cilium: each test pod's security identity, the VNI of what it sends (its CiliumEndpoint): {bound}",)
        return topology

    def _routes(self, node: str) -> list:
        import json

        return json.loads(self._node_files(node).get(rundir.ROUTES) or "null") or []

    def _endpoints_of(self, pods: dict[str, Pod]):
        """The test pods' CiliumEndpoints, awaited: the agent writes one as it sets up each pod's network."""
        import time

        from vxcap.adapters.kube.cni import list_cilium_endpoints
        from vxcap.core.cni.cilium import endpoints

        names = {pod.name for pod in pods.values()}
        deadline = time.monotonic() + self.ready_timeout
        while True:
            items = [i for i in list_cilium_endpoints(self.cluster.conn)
                     if (i.get("metadata") or {}).get("namespace") == self.cluster.namespace
                     and (i.get("metadata") or {}).get("name") in names]
            found = endpoints(items)
            have = {e.name for e in found}
            if self.on_wait is not None:
                self.on_wait(f"CiliumEndpoints {len(have & names)}/{len(names)}")
            if names <= have:
                return found
            if time.monotonic() >= deadline:
                missing = ", ".join(sorted(names - have))
                raise InputError(f"no CiliumEndpoint with an identity for test pod(s) {missing} after "
                                 f"{self.ready_timeout:g}s: is Cilium managing them? (their identity is their VNI)")
            time.sleep(0.5)

    def backend_for(self, node: str) -> CaptureBackend:
        if node not in self._backend_of:
            if self.capture is CaptureBackend.AUTO:
                running = self._docker_captures().node_container_running(node)
                self._backend_of[node] = CaptureBackend.DOCKER if running else CaptureBackend.POD
            else:
                self._backend_of[node] = self.capture
        return self._backend_of[node]

    def _touch(self, backend: CaptureBackend) -> None:
        if backend is CaptureBackend.DOCKER:
            self._may_have_containers = True
        else:
            self._may_have_pods = True

    def provision(self, nodes: tuple[str, ...]) -> dict[str, Pod]:
        """Test pods on `nodes`, and the capture pods the pod backend needs there, created and awaited together.

        A capture pod that cannot become Ready fails only its node's capture (said by start_capture)."""
        self._capture_deadline = capture_deadline(len(nodes))
        capture_nodes = [node for node in nodes if self.backend_for(node) is CaptureBackend.POD]
        self._may_have_pods = True
        self.pods, self._capture_pod_failures = self.cluster.create_run_pods(
            self.run_id, nodes, capture_nodes, capture_image=self.capture_image or CAPTURE_IMAGE, timeout=self.ready_timeout
        )
        return self.pods

    def underlay_iface(self, node: str) -> str:
        return self.iface

    def start_capture(self, node: str, path: Path, bpf: str):
        common = dict(iface=self.iface, bpf=bpf, snaplen=DEFAULT_SNAPLEN, max_packets=DEFAULT_MAX_PACKETS,
                      duration=self._capture_deadline, out_path=path)
        backend = self.backend_for(node)
        self._touch(backend)
        if backend is CaptureBackend.DOCKER:
            return self._docker_captures().start_capture(node, **common)
        self._capture_pod_ready(node)
        return self.cluster.start_capture(node, run_id=self.run_id, **common)

    def start_captures(self, requests: list[tuple[str, Path, str]]) -> list:
        """Every node's capture, started a few at a time (each waits on an exec or a container
        start): a thousand one after the other would take minutes before the first probe."""
        if any(self.backend_for(node) is CaptureBackend.DOCKER for node, _, _ in requests):
            self._docker_captures()  # made once, here, not by racing threads
        return fan_out(lambda request: self.start_capture(*request), requests, workers=self.max_parallel)

    def _capture_pod_ready(self, node: str) -> None:
        if node in self._capture_pod_failures:
            raise self._capture_pod_failures[node]
        # Made here so the capture pod waits as long as the test pods may, not the adapter's default;
        # and from the capture image, not the test pods': it runs as nobody, its tcpdump needs file capabilities.
        self.cluster.create_capture_pods(self.run_id, [node], image=self.capture_image or CAPTURE_IMAGE,
                                         timeout=self.ready_timeout)

    def ping(self, src_node: str, dst_ip: IPv4Address, count: int):
        if src_node not in self.pods:
            raise InputError(f"no test pod on {src_node}")
        return self.cluster.ping(self.pods[src_node], dst_ip, count=count)

    def df_ping(self, src_node: str, dst_ip: IPv4Address, size: int, wait: float):
        """One DF echo of `size` payload bytes from the node's test pod: (PingResult, ping's whole output)."""
        from vxcap.core.ping import parse_ping, ping_argv

        if src_node not in self.pods:
            raise InputError(f"no test pod on {src_node}")
        argv = ping_argv(dst_ip, 1, 0.2, wait, size=size, dont_fragment=True)
        result = self.cluster.exec(self.pods[src_node].name, argv, timeout=wait + _EXEC_MARGIN_S)
        return parse_ping(result.stdout, result.stderr, result.returncode), result.stdout + result.stderr

    # Each probe is an exec in a test pod: a bounded pool overlaps their round trips.

    def ping_all(self, probes: Sequence[tuple[str, IPv4Address]], count: int):
        return fan_out(lambda probe: self.ping(probe[0], probe[1], count), probes)

    def df_ping_all(self, probes: Sequence[tuple[str, IPv4Address, int]], wait: float):
        return fan_out(lambda probe: self.df_ping(probe[0], probe[1], probe[2], wait), probes)

    def tcp_exchange(self, src_node: str, dst_node: str, dst_ip: IPv4Address, port: int) -> tuple[bool, str]:
        """One short TCP connection between the test pods: (connected, what the programs said).

        exec runs to completion, so the listener's exec runs in a thread while the
        connector, retrying until the listener is up, connects to the agreed port.
        """
        from vxcap.core.mtu.tcp import DEFAULT_TIMEOUT_S, connected, connector_argv, listener_argv

        if src_node not in self.pods or dst_node not in self.pods:
            raise InputError(f"no test pod on {src_node if src_node not in self.pods else dst_node}")
        heard: dict[str, object] = {}

        def listen() -> None:
            try:
                heard["result"] = self.cluster.exec(
                    self.pods[dst_node].name,
                    listener_argv(POD_PYTHON, port, DEFAULT_TIMEOUT_S + 2.0, family=dst_ip.version),
                    timeout=DEFAULT_TIMEOUT_S + _EXEC_MARGIN_S,
                )
            except Exception as err:  # noqa: BLE001 - reported with the exchange, never raised from a thread
                heard["error"] = err

        listener = threading.Thread(target=listen, name=f"vxcap-tcp-listen-{dst_node}", daemon=True)
        listener.start()
        try:
            result = self.cluster.exec(
                self.pods[src_node].name,
                connector_argv(POD_PYTHON, dst_ip, port, DEFAULT_TIMEOUT_S),
                timeout=DEFAULT_TIMEOUT_S + _EXEC_MARGIN_S,
            )
        finally:
            listener.join(DEFAULT_TIMEOUT_S + _EXEC_MARGIN_S)
        said = (result.stdout + result.stderr).strip()
        if "error" in heard:
            said += f" (listener: {heard['error']})"
        return connected(result.stdout), f"{dst_ip}:{port}: {said}"

    def _node_files(self, node: str) -> dict[str, str]:
        backend = self.backend_for(node)
        self._touch(backend)
        if backend is CaptureBackend.DOCKER:
            return self._docker_captures().node_tables(node)
        self._capture_pod_ready(node)
        return self.cluster.node_tables(node, run_id=self.run_id)

    def node_tables(self, node: str) -> dict[str, str]:
        if not self.pods and self.backend_for(node) is CaptureBackend.POD:
            # The test pods never became Ready: a capture pod would wait for the
            # same node again, doubling the wait for nothing the run can judge.
            return {}
        files = self._node_files(node)
        pod_links = self._pod_links(node)
        if pod_links is not None:
            files[rundir.POD_LINKS] = pod_links
        return files

    def _pod_links(self, node: str) -> str | None:
        """The test pod's own `ip -d -j link` (its eth0 MTU); None when the pod cannot say."""
        pod = self.pods.get(node)
        if pod is None:
            return None
        try:
            result = self.cluster.exec(pod.name, POD_LINK_ARGV, timeout=_EXEC_MARGIN_S)
        except VxcapError:  # the MTUs are then reported as unknown; the node's evidence still counts
            return None
        return result.stdout if result.returncode == 0 and result.stdout.strip() else None

    def release(self) -> None:
        """Cleanup is a promise: the run's pods and capture helpers go, whatever happened."""
        if self.keep:
            return
        try:
            if self._may_have_pods:
                self.cluster.delete_run(self.run_id)
        finally:
            try:
                if self._may_have_containers and self._docker is not None:
                    self._docker.cleanup(self.run_id)
            finally:
                self.cluster.close()


def cleanup_everything(
    kubeconfig: str | None, context: str | None, namespace: str, capture_namespace: str | None = None
) -> tuple[list[str], list[str]]:
    """What `vxcap cleanup` removes: every pod and capture container vxcap labelled."""
    from vxcap.adapters.docker_capture import DockerCaptures, DockerUnavailable
    from vxcap.adapters.kube import KubeCluster

    cluster = KubeCluster(kubeconfig, context, namespace=namespace, capture_namespace=capture_namespace)
    try:
        pods = cluster.cleanup()
    finally:
        cluster.close()
    try:
        containers = DockerCaptures().cleanup()
    except DockerUnavailable:
        containers = []
    return pods, containers
