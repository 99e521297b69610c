"""KubeCluster: the one object the pipeline drives for a real cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

from vxcap.adapters.kube import capture as kcapture
from vxcap.adapters.kube import discovery, manifests, namespaces, pods
from vxcap.adapters.kube import exec as kexec
from vxcap.adapters.kube.batching import Limits, RateLimiter
from vxcap.adapters.kube.connection import Connection, cluster_name, connect
from vxcap.adapters.kube.errors import KubeError
from vxcap.core.capture import CAPTURE_IMAGE, DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN
from vxcap.core.model import Pod, Topology
from vxcap.core.names import check_namespace, check_pod_name
from vxcap.core.ping import PingResult, parse_ping, ping_argv

DEFAULT_READY_TIMEOUT_S = 60.0
_PING_MARGIN_S = 15.0


def _pod_addresses(pod: dict[str, Any]) -> tuple[IPv4Address | None, IPv6Address | None]:
    """The pod's IPv4 address, or on an IPv6-only cluster (no IPv4 one) its IPv6 address."""
    status = pod.get("status") or {}
    candidates = [status.get("podIP")] + [entry.get("ip") for entry in status.get("podIPs") or []]
    addresses = []
    for text in candidates:
        if not text:
            continue
        try:
            addresses.append(ip_address(text))
        except ValueError:
            continue
    for address in addresses:
        if isinstance(address, IPv4Address):
            return address, None
    for address in addresses:
        if isinstance(address, IPv6Address):
            return None, address
    raise KubeError(f"pod {pod['metadata']['name']} is Ready but has no IPv4 address (podIPs {status.get('podIPs')})")


class KubeCluster:
    """A Kubernetes cluster with Calico, reached like kubectl: --kubeconfig and --context.

    Nothing is contacted until the first call; every failure is a one-line KubeError.
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str = manifests.DEFAULT_NAMESPACE,
        image: str = manifests.DEFAULT_IMAGE,
        capture_namespace: str | None = None,
        on_wait: Callable[[str], None] | None = None,
        limits: Limits | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.on_wait = on_wait  # told what a wait is for as it changes ("pods Ready 2/4")
        # Pods are created in batches, at most limits.max_parallel at a time and no faster than
        # limits.qps: one bucket for the whole run, so test and capture pods share it.
        self.limits = limits or Limits()
        self.limiter = RateLimiter(self.limits.qps)
        self.progress = progress  # (created, total, batch number) after each batch
        self.requested_context = context
        self.namespace = check_namespace(namespace)
        # Capture pods need Pod Security `privileged`; a namespace of their own lets the test pods' stay restricted.
        self.capture_namespace = check_namespace(capture_namespace or namespace)
        self.image = image
        self.notes: tuple[str, ...] = ()  # what discover() had to guess or fall back on
        self.calico_group: str | None = None  # the API group discover() read Calico from
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._pod_namespaces: dict[str, str] = {}
        self._capture_pods: dict[tuple[str, str], str] = {}  # (run_id, node) -> pod name

    # -- connection

    @property
    def conn(self) -> Connection:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.kubeconfig, self.requested_context)
            return self._conn

    @property
    def context(self) -> str:
        return self.conn.context

    @property
    def cluster(self) -> str:
        return cluster_name(self.conn.context)

    @property
    def description(self) -> str:
        return f"cluster {self.cluster} (context {self.context}, {self.conn.server})"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- discovery

    def discover(self) -> Topology:
        """Nodes, blocks, VTEPs and the overlay's mode/VNI/port/MTU as Calico has them."""
        found, group = discovery.discover(self.conn)
        self.notes = found.notes
        self.calico_group = group
        return found.topology

    # -- test pods

    def create_test_pods(
        self,
        run_id: str,
        nodes: tuple[str, ...] | list[str],
        image: str | None = None,
        namespace: str | None = None,
        timeout: float = DEFAULT_READY_TIMEOUT_S,
    ) -> dict[str, Pod]:
        """One unprivileged test pod pinned to each node, all created at once; returns when all are Ready."""
        namespace = check_namespace(namespace or self.namespace)
        bodies = [manifests.probe_pod(self._run_id(run_id), node, image or self.image) for node in nodes]
        ready = self._create_and_wait(namespace, run_id, bodies, timeout)
        result = {}
        for body in bodies:
            pod = ready[body["metadata"]["name"]]
            node = body["spec"]["nodeName"]
            result[node] = Pod(name=body["metadata"]["name"], node=node, ip=(ips := _pod_addresses(pod))[0], ip6=ips[1])
            self._pod_namespaces[result[node].name] = namespace
        return result

    def _run_id(self, run_id: str) -> str:
        try:
            return manifests.check_run_id(run_id)
        except ValueError as err:
            raise KubeError(str(err)) from None

    @property
    def load_command(self) -> str | None:
        """How to put vxcap's images on this cluster's nodes, when vxcap can do it (Kind)."""
        context = self.conn.context
        return f"vxcap images load --kind {cluster_name(context)}" if context.startswith("kind-") else None

    def _ensure(self, namespace: str) -> None:
        namespaces.ensure_namespace(self.conn, namespace, privileged=namespace == self.capture_namespace)

    def _create_and_wait(self, namespace: str, run_id: str, bodies: list[dict[str, Any]], timeout: float) -> dict[str, dict[str, Any]]:
        self._ensure(namespace)
        pods.create_all(self.conn, namespace, bodies, self.limits, self.limiter, self.progress)
        names = [body["metadata"]["name"] for body in bodies]
        return pods.wait_ready(self.conn, namespace, names, manifests.managed_selector(run_id), timeout, self.load_command,
                               self._ready_tellers({namespace: len(names)})[namespace])

    def _ready_tellers(self, totals: dict[str, int]) -> dict[str, Callable[[int, int], None] | None]:
        """Per namespace, an on_ready for its wait that tells on_wait the count over all of them
        (their waits run side by side): "pods Ready 3/4"."""
        on_wait = self.on_wait
        if on_wait is None:
            return {ns: None for ns in totals}
        counts: dict[str, int] = {}
        lock = threading.Lock()

        def teller(namespace: str) -> Callable[[int, int], None]:
            def tell(ready: int, total: int) -> None:
                with lock:
                    counts[namespace] = ready
                    said = f"pods Ready {sum(counts.values())}/{sum(totals.values())}"
                on_wait(said)

            return tell

        return {ns: teller(ns) for ns in totals}

    def create_run_pods(
        self,
        run_id: str,
        test_nodes: tuple[str, ...] | list[str],
        capture_nodes: tuple[str, ...] | list[str],
        image: str | None = None,
        capture_image: str | None = None,
        timeout: float = DEFAULT_READY_TIMEOUT_S,
    ) -> tuple[dict[str, Pod], dict[str, KubeError]]:
        """Test pods and capture pods created together and awaited together (one wait, not one per node).

        Returns the test pods by node (all Ready, else a KubeError) and, by node, why
        a capture pod is not Ready: that node's capture fails, the run goes on.
        """
        run_id = self._run_id(run_id)
        namespace = self.namespace
        tests = [manifests.probe_pod(run_id, node, image or self.image) for node in test_nodes]
        captures = [manifests.capture_pod(run_id, node, capture_image or CAPTURE_IMAGE) for node in capture_nodes
                    if (run_id, node) not in self._capture_pods]
        groups = {namespace: list(tests)}
        groups.setdefault(self.capture_namespace, []).extend(captures)
        groups = {ns: bodies for ns, bodies in groups.items() if bodies}
        for ns in groups:
            self._ensure(ns)
        for ns, bodies in groups.items():
            pods.create_all(self.conn, ns, bodies, self.limits, self.limiter, self.progress)
        selector, load = manifests.managed_selector(run_id), self.load_command

        # The run cannot go on without its test pods: one that cannot start ends the wait.
        required = {body["metadata"]["name"] for body in tests}

        tellers = self._ready_tellers({ns: len(bodies) for ns, bodies in groups.items()})

        def settle(ns: str):
            names = [b["metadata"]["name"] for b in groups[ns]]
            return pods.wait_settled(self.conn, ns, names, selector, timeout, load, required=required & set(names),
                                     on_ready=tellers[ns])

        # One wait per namespace, side by side: both kinds of pods start at once.
        with ThreadPoolExecutor(max_workers=max(1, len(groups)), thread_name_prefix="vxcap-wait") as pool:
            settled = list(pool.map(settle, groups))
        ready = {name: pod for got, _ in settled for name, pod in got.items()}
        failed = {name: why for _, lost in settled for name, why in lost.items()}
        test_failures = {body["metadata"]["name"]: failed[body["metadata"]["name"]] for body in tests if body["metadata"]["name"] in failed}
        if test_failures:
            pods.raise_failed(test_failures, timeout)
        result = {}
        for body in tests:
            name, node = body["metadata"]["name"], body["spec"]["nodeName"]
            result[node] = Pod(name=name, node=node, ip=(ips := _pod_addresses(ready[name]))[0], ip6=ips[1])
            self._pod_namespaces[name] = namespace
        capture_failures = {}
        for body in captures:
            name, node = body["metadata"]["name"], body["spec"]["nodeName"]
            if name in failed:
                capture_failures[node] = KubeError(failed[name])
            else:
                self._capture_pods[(run_id, node)] = name
        return result, capture_failures

    def exec(self, pod: str, argv: list[str], timeout: float = 30.0, namespace: str | None = None) -> kexec.ExecResult:
        """Run argv (no shell) in one of vxcap's pods."""
        check_pod_name(pod)
        namespace = check_namespace(namespace or self._pod_namespaces.get(pod, self.namespace))
        return kexec.run(self.conn, namespace, pod, list(argv), timeout)

    def ping(
        self,
        pod: Pod,
        dst_ip: IPv4Address | str,
        count: int = 3,
        size: int | None = None,
        dont_fragment: bool = False,
        interval: float = 0.2,
        wait: float = 1.0,
    ) -> PingResult:
        """iputils ping from the test pod; what its statistics say."""
        argv = ping_argv(dst_ip, count, interval, wait, size=size, dont_fragment=dont_fragment)
        timeout = count * interval + wait + _PING_MARGIN_S
        result = self.exec(pod.name, argv, timeout=timeout)
        return parse_ping(result.stdout, result.stderr, result.returncode)

    # -- capture pods

    def create_capture_pods(
        self, run_id: str, nodes: tuple[str, ...] | list[str], image: str | None = None, timeout: float = DEFAULT_READY_TIMEOUT_S
    ) -> dict[str, str]:
        """A capture pod on each node (hostNetwork, NET_RAW + NET_ADMIN only), all Ready; node -> pod name.

        `image` defaults to vxcap's capture image, never the test pods': the pod runs
        as nobody, so its tcpdump must carry file capabilities."""
        wanted = [node for node in nodes if (run_id, node) not in self._capture_pods]
        bodies = [manifests.capture_pod(self._run_id(run_id), node, image or CAPTURE_IMAGE) for node in wanted]
        if bodies:
            self._create_and_wait(self.capture_namespace, run_id, bodies, timeout)
        for body in bodies:
            self._capture_pods[(run_id, body["spec"]["nodeName"])] = body["metadata"]["name"]
        return {node: self._capture_pods[(run_id, node)] for node in nodes}

    def _capture_pod(self, run_id: str, node: str) -> str:
        return self.create_capture_pods(run_id, [node])[node]

    def start_capture(
        self,
        node: str,
        iface: str = "eth1",
        bpf: str = "",
        snaplen: int = DEFAULT_SNAPLEN,
        max_packets: int = DEFAULT_MAX_PACKETS,
        duration: float | None = None,
        out_path: str | Path | None = None,
        *,
        run_id: str,
        listen_timeout: float = kcapture.LISTEN_TIMEOUT_S,
    ) -> kcapture.KubeCapture:
        """tcpdump on the node's `iface`, from the run's capture pod; returns once it is listening."""
        pod = self._capture_pod(run_id, node)
        argv = kcapture.capture_argv(iface, bpf, snaplen, max_packets, duration)
        running = kcapture.KubeCapture(self.conn, self.capture_namespace, pod, node, iface, Path(out_path) if out_path else None)
        return running.start(argv, listen_timeout)

    def node_tables(self, node: str, *, run_id: str) -> dict[str, str]:
        """`ip -d -j link`, `ip -j route`, `ip -j neigh`, `bridge -j fdb show` of the node, by file name."""
        return kcapture.node_tables(self.conn, self.capture_namespace, self._capture_pod(run_id, node))

    # -- cleanup

    def delete_run(self, run_id: str) -> list[str]:
        """Delete the run's pods (test and capture); the names deleted. Safe to call twice."""
        selector = manifests.managed_selector(self._run_id(run_id))
        names = pods.delete_matching(self.conn, self.namespace, selector)
        if self.capture_namespace != self.namespace:
            names += pods.delete_matching(self.conn, self.capture_namespace, selector)
        self._capture_pods = {key: pod for key, pod in self._capture_pods.items() if key[0] != run_id}
        return names

    def cleanup(self, namespace: str | None = None) -> list[str]:
        """Delete every pod vxcap made in the namespace, whatever its run; the names deleted."""
        names = pods.delete_matching(self.conn, check_namespace(namespace or self.namespace), manifests.managed_selector())
        if namespace is None and self.capture_namespace != self.namespace:
            names += pods.delete_matching(self.conn, self.capture_namespace, manifests.managed_selector())
        self._capture_pods.clear()
        return names
