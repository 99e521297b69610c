"""`vxcap run`: parse, check what applies where, run the pipeline, render. Nothing else."""

from __future__ import annotations

from pathlib import Path

import click

from vxcap.cli.guard import Fail, Interrupted, add_no_cluster_hints, guarded, require_root
from vxcap.cli.help import GroupedCommand
from vxcap.cli.options import (
    cluster_options,
    cni_option,
    coverage_options,
    coverage_settings,
    direct_routing_option,
    ipip_mode_option,
    lab_options,
    output_options,
)
from vxcap.exit_status import ExitStatus

EXAMPLES = """
vxcap run --lab --pair worker,worker3 --pair worker,worker2   # the embedded lab (as root)
vxcap run --pair worker,worker3                               # the cluster of your kubeconfig
vxcap run --all-pairs --capture pod --context prod            # any cluster, every node pair
vxcap run --lab --nodes 64 --subnets 8 --coverage             # O(N) pairs that still reach every node
vxcap run --lab --cni flannel --all-pairs                     # Flannel's vxlan: UDP 8472, VNI 1
vxcap run --cni auto --all-pairs                              # a cluster's own CNI: Flannel, Cilium, Antrea
vxcap run --lab --cni cilium --all-pairs                      # Cilium's tunnel: UDP 8472, VNI = sender's identity
vxcap run --lab --cni antrea --all-pairs                      # Antrea's Geneve: UDP 6081, VNI 0 (Open vSwitch)
vxcap run --lab --overlay dual --all-pairs                    # dual-stack: each direction in IPv4 and IPv6
vxcap doctor --lab                                            # can a run start here?
"""

SECTIONS = (
    ("What to test", ("pairs", "all_pairs", "coverage", "seed", "peers", "count", "cni")),
    ("Where: the embedded lab (network namespaces, root)", ("lab", "lab_file", "nodes", "subnets", "overlay", "prefix",
                                                            "direct_routing", "ipip_mode")),
    ("Where: a cluster (the default)", ("kubeconfig", "context", "namespace", "image", "ready_timeout",
                                        "max_parallel", "api_qps")),
    ("How to capture", ("capture_filter",)),
    ("How to capture on a cluster's nodes", ("capture", "capture_image", "capture_namespace", "iface")),
    ("Output", ("out_parent", "as_json", "quiet", "keep", "cross_check")),
)
LAB_ONLY = ("lab_file", "nodes", "subnets", "overlay", "prefix", "direct_routing", "ipip_mode")
CLUSTER_ONLY = ("kubeconfig", "context", "namespace", "image", "ready_timeout", "capture", "capture_image", "iface",
                "capture_namespace", "max_parallel", "api_qps")


def _check_pairs(ctx, param, value):
    """Pair syntax, before anything is contacted: which nodes exist is for discovery to say."""
    from vxcap.core.errors import InputError
    from vxcap.core.plan import split_pair

    for spec in value:
        try:
            split_pair(spec)
        except InputError as err:
            raise click.BadParameter(str(err).removeprefix(f"--pair {spec!r}: "), ctx, param) from None
    return value


@click.command(
    cls=GroupedCommand, examples=EXAMPLES, sections=SECTIONS, lab_only=LAB_ONLY, cluster_only=CLUSTER_ONLY,
    epilog="Leaves captures/<run-id>/: one pcap per node with its routes, neighbours, FDB and links beside it, "
           "manifest.json, report.json, junit.xml, report.html and evidence/.",
)
@click.option("--pair", "pairs", multiple=True, metavar="A,B", callback=_check_pairs,
              help="Two nodes to test both ways; short names work (worker = k01-worker). Repeatable.")
@click.option("--all-pairs", is_flag=True, help="Test every pair of nodes.")
@coverage_options
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Echo requests per direction.")
@lab_options("Target the embedded lab (built on demand, removed after unless --keep).")
@direct_routing_option
@click.option("--overlay", type=click.Choice(["vxlan", "vxlan6", "dual", "wireguard", "wireguard6", "wireguard-dual", "ipip"]), default=None,
              metavar="PLANE", help="The lab's data plane (as `vxcap lab up --overlay`): vxlan (the reference), vxlan6, dual, "
                   "wireguard, wireguard6, wireguard-dual, ipip (tunl0; without the kernel's ipip module, userspace encapsulation, "
                   "RFC 2003 on the wire). Default: the lab that exists, else vxlan.")
@ipip_mode_option
@cluster_options
@cni_option("calico", "Whose promises to judge. A cluster: calico, flannel (vxlan with or without DirectRouting, "
                      "host-gw), cilium (tunnel: VNI = the sending pod's identity; native), antrea (encap, hybrid, "
                      "noEncap over Geneve or VXLAN), or auto (the CNI whose agent runs). With --lab: calico, "
                      "flannel (the lab built as Flannel's vxlan backend: VXLAN on UDP 8472, VNI 1), cilium "
                      "(Cilium's vxlan tunnel: UDP 8472, VNI = the sending pod's identity) or antrea (Antrea's Geneve "
                      "on 6081, VNI 0, through Open vSwitch); auto takes the lab as built.")
@click.option("--namespace", default="vxcap", show_default=True, help="Namespace for test pods and capture pods.")
@click.option("--capture-namespace", default=None,
              help="Namespace for capture pods only (Pod Security `privileged`), so --namespace can stay restricted.")
@click.option("--image", default=None, help="Test pod image (needs iputils ping; python3 for the TCP/MSS exchange). "
                                             "Default: vxcap's own, vxcap/netshoot-lite:bookworm-v3 (load it with "
                                             "`vxcap images load`). Capture pods use --capture-image.")
@click.option("--ready-timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds to wait for test and capture pods to become Ready.")
@click.option("--max-parallel", default=8, show_default=True, type=click.IntRange(1, 256),
              help="At most this many pod creations (and capture starts) in flight; pods go out in batches of 100.")
@click.option("--api-qps", default=50.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="At most this many pod creations per second, on average (a client-side rate limit).")
@click.option("--capture", type=click.Choice(["auto", "docker", "pod"]), default="auto", show_default=True,
              help="docker (Kind/containerlab: a helper joins the node container), pod (any cluster: a hostNetwork "
                   "pod, as nobody with NET_RAW+NET_ADMIN only), auto (docker when a container named like the node runs).")
@click.option("--capture-image", default=None,
              help="Image for the capture helpers. They run as uid 65534, so its tcpdump needs file capabilities "
                   "cap_net_raw,cap_net_admin=eip. Default: vxcap/netshoot-lite:bookworm-v3 "
                   "(scripts/build-capture-image; load it onto the nodes: `vxcap images load --kind NAME`). "
                   "See docs/capture.md.")
@click.option("--iface", default="eth1", show_default=True, help="Node underlay interface to capture on.")
@click.option("--capture-filter", "capture_filter", type=click.Choice(["precise", "wide"]), default="precise",
              show_default=True, help="precise: the test pods' frames, inside VXLAN too, and ICMP errors about "
                                      "them; wide: everything between the nodes (debugging).")
@click.option("--out", "out_parent", type=click.Path(file_okay=False, path_type=Path), default=Path("captures"),
              show_default=True, help="Parent directory of the run directory captures/<run-id>/.")
@output_options
@click.option("--keep", is_flag=True, help="Keep what the run made (lab, pods) for debugging; `vxcap cleanup` or "
                                            "`vxcap lab down` removes it later.")
@click.option("--cross-check", is_flag=True, help="Also decode with tshark's dissectors (pyshark); any disagreement fails.")
@guarded(nothing_made=False)
def run(pairs, all_pairs, coverage, seed, peers, count, lab, lab_file, nodes, subnets, overlay, prefix, direct_routing, ipip_mode,
        kubeconfig, context,
        cni, namespace, capture_namespace, image, ready_timeout, max_parallel, api_qps, capture, capture_image, iface,
        capture_filter, out_parent, as_json, quiet, keep, cross_check) -> None:
    """Send pod-to-pod traffic, capture it on the underlay, and judge each direction."""
    from vxcap.cli.console import error

    if not pairs and not all_pairs and not coverage:
        error("no pair to test: give --pair A,B (repeatable), --all-pairs or --coverage")
        raise Fail(ExitStatus.USAGE)
    if coverage and (pairs or all_pairs):
        error("--coverage plans the pairs itself: leave out --pair and --all-pairs")
        raise Fail(ExitStatus.USAGE)
    seed, peers = coverage_settings(coverage, seed, peers)
    from vxcap.core.names import check_iface, check_namespace

    check_namespace(namespace, "--namespace")
    if capture_namespace is not None:
        check_namespace(capture_namespace, "--capture-namespace")
    check_iface(iface, "--iface")
    from vxcap.cli.live import LiveProgress
    from vxcap.pipeline import RunOptions, new_run_id
    from vxcap.pipeline import run as run_pipeline

    run_id = new_run_id()
    live = LiveProgress(quiet=quiet)
    if lab:
        require_root("vxcap run --lab")
        from vxcap.targets.lab import LabTarget, choose_lab

        source = choose_lab(prefix, lab_file, nodes, subnets, overlay, cni=cni, direct_routing=direct_routing,
                            ipip_mode=ipip_mode)
        target = LabTarget(source, prefix=prefix, keep=keep, cni=cni)
    else:
        from vxcap.targets.cluster import ClusterTarget

        target = ClusterTarget(run_id, kubeconfig, context, namespace=namespace, image=image, capture=capture,
                               capture_image=capture_image, iface=iface, keep=keep, ready_timeout=ready_timeout,
                               capture_namespace=capture_namespace, on_wait=live.waiting,
                               max_parallel=max_parallel, api_qps=api_qps, cni=cni)
    options = RunOptions(pair_specs=tuple(pairs), all_pairs=all_pairs, out_parent=out_parent, ping_count=count,
                         run_id=run_id, cross_check=cross_check, capture_filter=capture_filter, coverage=coverage,
                         seed=seed, peers=peers)
    try:
        with live:
            outcome = run_pipeline(target, options, progress=live.stage, waiting=live.waiting)
    except KeyboardInterrupt:
        raise Interrupted(aftermath(target, judged=False)) from None
    except Exception as err:
        what = " ".join(f"--pair {p}" for p in pairs) if pairs else ("--coverage" if coverage else "--all-pairs")
        add_no_cluster_hints(err, f"vxcap run --lab {what}")
        raise
    from vxcap.cli.show import show_outcome

    show_outcome(outcome, as_json=as_json, quiet=quiet)
    if outcome.interrupted:
        raise Interrupted(aftermath(target, judged=True))
    raise Fail(ExitStatus.SUCCESS if outcome.passed else ExitStatus.VERDICT_FAILED)


def aftermath(target, judged: bool) -> str:
    """What an interrupted run leaves, as it is: what was judged, and what was kept or removed."""
    first = "what was captured until then is judged above; " if judged else ""
    if hasattr(target, "built_here"):  # the embedded lab
        if not target.built_here:
            return first + "the lab was there before the run and is left as it was"
        if target.keep:
            return first + "the lab the run built is kept (--keep); `vxcap lab down` removes it"
        return first + "the lab the run built has been removed"
    if target.keep:
        return first + "the run's test pods and capture helpers are kept (--keep); `vxcap cleanup` removes them"
    return first + "the run's test pods and capture helpers have been removed"
