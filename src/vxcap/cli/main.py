"""`vxcap`: thin click commands. Heavy imports (scapy, the adapters) happen inside
the commands, so `vxcap --help` answers at once."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from vxcap import __version__
from vxcap.exit_status import ExitStatus


def _raise_interrupt(signum, frame):  # SIGTERM must unwind like Ctrl-C, so cleanup runs
    raise KeyboardInterrupt


class _Fail(Exception):
    def __init__(self, status: ExitStatus) -> None:
        self.status = status


def _guarded(fn):
    """Every command: input errors are one line and exit 2, interrupts exit 130."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from vxcap.cli.console import error
        from vxcap.core.errors import VxcapError

        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            error("interrupted: everything this run made has been removed")
            sys.exit(ExitStatus.INTERRUPTED)
        except _Fail as fail:
            sys.exit(fail.status)
        except VxcapError as err:
            error(str(err))
            sys.exit(ExitStatus.USAGE)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        from vxcap.cli.console import error

        error(f"{what} needs root (it creates network namespaces and runs tcpdump): run it as root")
        raise _Fail(ExitStatus.USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vxcap")
def cli() -> None:
    """Prove with packets what your Kubernetes overlay does on the wire.

    vxcap sends pod-to-pod traffic between chosen nodes, captures it on each
    node's underlay interface, and judges every direction: same-subnet traffic
    must be plain IP, cross-subnet traffic must be VXLAN with the right port,
    VNI and outer addresses (Calico's vxlanMode CrossSubnet).

    \b
    Quick start, as root, on the embedded lab (network namespaces):
      vxcap run --lab --pair worker,worker3 --pair worker,worker2
      vxcap analyze captures/<run-id>      # judge a saved run again
      vxcap lab status                     # what the lab has built

    Exit status: 0 all verdicts passed, 1 a verdict failed,
    2 bad usage or input, 130 interrupted.
    """


lab_file_option = click.option(
    "--lab-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Lab description (YAML). Default: the reference Calico overlay lab (topology/k01-lab.yaml).",
)
nodes_option = click.option(
    "--nodes", type=int, default=None,
    help="Generate a larger lab on the reference pattern with this many nodes (2-64) instead.",
)
subnets_option = click.option(
    "--subnets", type=int, default=None, help="With --nodes: how many underlay subnets to spread them over.",
)
def cluster_options(fn):
    for option in reversed([
        click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
                      help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config), like kubectl."),
        click.option("--context", default=None, help="Kubeconfig context to use, like kubectl."),
    ]):
        fn = option(fn)
    return fn


prefix_option = click.option(
    "--prefix",
    default="vxcap",
    show_default=True,
    help="Name prefix of the lab's network namespaces, so several labs can coexist.",
)


@cli.command()
@click.option("--pair", "pairs", multiple=True, metavar="A,B",
              help="Two nodes to test both ways; short names work (worker = k01-worker). Repeatable.")
@click.option("--all-pairs", is_flag=True, help="Test every pair of nodes.")
@click.option("--lab", is_flag=True, help="Target the embedded lab (built on demand, removed after unless --keep).")
@lab_file_option
@nodes_option
@subnets_option
@prefix_option
@cluster_options
@click.option("--namespace", default="vxcap", show_default=True, help="Namespace for test pods and capture pods.")
@click.option("--capture-namespace", default=None,
              help="Namespace for capture pods only (Pod Security `privileged`), so --namespace can stay restricted.")
@click.option("--image", default=None, help="Test pod image (needs iputils ping; python3 for the TCP/MSS exchange). "
                                             "Default: vxcap's own, vxcap/netshoot-lite:bookworm-v3 (load it with "
                                             "`vxcap images load`). Capture pods use --capture-image.")
@click.option("--capture", type=click.Choice(["auto", "docker", "pod"]), default="auto", show_default=True,
              help="How to capture on a node: docker (Kind/containerlab: a helper joins the node container), "
                   "pod (any cluster: a hostNetwork pod, as nobody with NET_RAW+NET_ADMIN only), auto (docker when a container named like the node runs).")
@click.option("--capture-image", default=None,
              help="Image for the capture helpers (Docker containers and capture pods). They run as uid 65534, so "
                   "its tcpdump needs file capabilities cap_net_raw,cap_net_admin=eip. Default: "
                   "vxcap/netshoot-lite:bookworm-v3 (scripts/build-capture-image; on a cluster, load it onto the "
                   "nodes: `vxcap images load --kind NAME`). See docs/capture.md.")
@click.option("--iface", default="eth1", show_default=True, help="Node underlay interface to capture on (clusters).")
@click.option("--capture-filter", "capture_filter", type=click.Choice(["precise", "wide"]), default="precise",
              show_default=True, help="precise: the test pods' frames, inside VXLAN too, and ICMP errors about "
                                      "them; wide: everything between the nodes (debugging).")
@click.option("--ready-timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds to wait for test and capture pods to become Ready.")
@click.option("--out", "out_parent", type=click.Path(file_okay=False, path_type=Path), default=Path("captures"),
              show_default=True, help="Parent directory of the run directory captures/<run-id>/.")
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Echo requests per direction.")
@click.option("--keep", is_flag=True, help="Keep what the run made (lab, pods) for debugging; `vxcap cleanup` removes it later.")
@click.option("--cross-check", is_flag=True, help="Also decode with tshark's dissectors (pyshark); any disagreement fails.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
@_guarded
def run(pairs, all_pairs, lab, lab_file, nodes, subnets, prefix, kubeconfig, context, namespace, capture_namespace, image, capture,
        capture_image, iface, capture_filter, ready_timeout, out_parent, count, keep, cross_check, as_json) -> None:
    """Send pod-to-pod traffic, capture it on the underlay, and judge each direction.

    \b
    Examples:
      vxcap run --lab --pair worker,worker3 --pair worker,worker2   # the embedded lab (root)
      vxcap run --pair worker,worker3                               # the cluster of your kubeconfig
      vxcap run --all-pairs --capture pod --context prod            # any cluster, every node pair

    Leaves captures/<run-id>/ with one pcap per node, routes/neighbours/FDB/links
    of each node beside it, manifest.json, report.json and junit.xml.
    """
    from vxcap.cli.console import error

    if not pairs and not all_pairs:
        error("no pair to test: give --pair A,B (repeatable) or --all-pairs")
        raise _Fail(ExitStatus.USAGE)
    from vxcap.core.names import check_iface, check_namespace

    check_namespace(namespace, "--namespace")
    if capture_namespace is not None:
        check_namespace(capture_namespace, "--capture-namespace")
    check_iface(iface, "--iface")
    from vxcap.cli.console import progress
    from vxcap.pipeline import RunOptions, new_run_id
    from vxcap.pipeline import run as run_pipeline

    run_id = new_run_id()
    if lab:
        _require_root("vxcap run --lab")
        from vxcap.targets.lab import LabTarget, choose_lab

        target = LabTarget(choose_lab(prefix, lab_file, nodes, subnets), prefix=prefix, keep=keep)
    else:
        if lab_file or nodes:
            error("--lab-file and --nodes describe the embedded lab: add --lab")
            raise _Fail(ExitStatus.USAGE)
        from vxcap.targets.cluster import ClusterTarget

        target = ClusterTarget(run_id, kubeconfig, context, namespace=namespace, image=image, capture=capture,
                               capture_image=capture_image, iface=iface, keep=keep, ready_timeout=ready_timeout,
                               capture_namespace=capture_namespace)
    options = RunOptions(pair_specs=tuple(pairs), all_pairs=all_pairs, out_parent=out_parent, ping_count=count,
                         run_id=run_id, cross_check=cross_check, capture_filter=capture_filter)
    outcome = run_pipeline(target, options, progress=progress)
    _render(outcome, as_json)


@cli.command()
@click.option("--lab", is_flag=True, help="Show the embedded lab's topology instead of a cluster's.")
@lab_file_option
@nodes_option
@subnets_option
@prefix_option
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: the plan `vxcap run` builds from.")
@_guarded
def topology(lab, lab_file, nodes, subnets, prefix, kubeconfig, context, as_json) -> None:
    """What vxcap found (nodes, underlay, pod blocks, VTEPs) and the wire format
    every ordered node pair must use, with the reason.

    \b
    Examples:
      vxcap topology                 # the cluster of your kubeconfig (reads only)
      vxcap topology --lab --json    # the embedded lab, for machines
    """
    from vxcap.core.plan import all_paths
    from vxcap.report.topology import topology_dict

    notes: tuple[str, ...] = ()
    if lab:
        from vxcap.targets.lab import choose_lab

        topo = choose_lab(prefix, lab_file, nodes, subnets).spec.topology
    else:
        from vxcap.adapters.kube import KubeCluster

        cluster = KubeCluster(kubeconfig, context)
        try:
            topo = cluster.discover()
            notes = cluster.notes
        finally:
            cluster.close()
    data = topology_dict(topo, all_paths(topo))
    from vxcap.cli.console import console

    if as_json:
        from vxcap.cli.console import raw

        raw(__import__("json").dumps(data, indent=2))
        return
    from vxcap.cli.render import topology_tables

    for table in topology_tables(data):
        console.print(table)
    for note in notes:
        console.print(f"[hint]note: {note}[/]", soft_wrap=True)


@cli.command()
@cluster_options
@click.option("--namespace", default="vxcap", show_default=True, help="Namespace vxcap's pods live in.")
@click.option("--capture-namespace", default=None, help="Also clean this namespace of capture pods (as given to run).")
@_guarded
def cleanup(kubeconfig, context, namespace, capture_namespace) -> None:
    """Remove everything vxcap left in the cluster and the local Docker engine (by label),
    e.g. after --keep or a run that was killed hard. The embedded lab: `vxcap lab down`."""
    from vxcap.cli.console import console
    from vxcap.core.names import check_namespace
    from vxcap.targets.cluster import cleanup_everything

    check_namespace(namespace, "--namespace")

    if capture_namespace is not None:
        check_namespace(capture_namespace, "--capture-namespace")
    pods, containers = cleanup_everything(kubeconfig, context, namespace, capture_namespace)
    console.print(f"removed {len(pods)} pod(s) and {len(containers)} capture container(s)")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--cross-check", is_flag=True, help="Also decode with tshark's dissectors (pyshark); any disagreement fails.")
@click.option("--evidence/--no-evidence", default=None,
              help="Write evidence/*.pcapng (default: when the captures hold at most 64 MiB).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
@_guarded
def analyze(run_dir, cross_check, evidence, as_json) -> None:
    """Decode and judge a saved run again, offline, from RUN_DIR/manifest.json.

    Works on captures taken by hand too: write a manifest.json beside them
    (see docs/manifest.md). Rewrites RUN_DIR/report.json and junit.xml.
    """
    from vxcap.pipeline import analyze as analyze_run

    from vxcap.cli.console import progress

    _render(analyze_run(run_dir, progress=progress, cross_check=cross_check, evidence=evidence), as_json)


def _render(outcome, as_json: bool) -> None:
    import json

    from vxcap.cli.console import console, raw
    from vxcap.cli.render import follow_up, reasons, summary, verdict_table

    if as_json:
        # Plain text, not rich's print_json: rendering a 240-flow report took seconds.
        raw(json.dumps(outcome.report, indent=2))
    else:
        if outcome.report["flows"]:
            console.print(verdict_table(outcome.report))
        for line in reasons(outcome.report) + follow_up(outcome.report):
            console.print(line, soft_wrap=True)
        console.print(summary(outcome.report, outcome.run_dir), soft_wrap=True)
    if outcome.interrupted:
        from vxcap.cli.console import error

        error("interrupted: what was captured until then is judged above; everything the run made has been removed")
        raise _Fail(ExitStatus.INTERRUPTED)
    raise _Fail(ExitStatus.SUCCESS if outcome.passed else ExitStatus.VERDICT_FAILED)


@cli.group()
def lab() -> None:
    """The embedded lab: the reference topology in network namespaces (root).

    A switch namespace with one gateway per subnet, one namespace per node with
    eth1 and vxlan.calico shaped like Calico's data plane, and one test pod per
    node. Sealed: nothing touches the host's interfaces.
    """


@lab.command("up")
@lab_file_option
@nodes_option
@subnets_option
@prefix_option
@_guarded
def lab_up(lab_file, nodes, subnets, prefix) -> None:
    """Build the lab (idempotent; repairs or replaces a broken one).

    \b
    Examples:
      vxcap lab up                           # the reference k01 lab
      vxcap lab up --nodes 16 --subnets 4    # a larger lab on the same pattern
    """
    _require_root("vxcap lab up")
    from vxcap.cli.console import console
    from vxcap.targets.lab import choose_lab, lab_up as build

    status = build(choose_lab(prefix, lab_file, nodes, subnets), prefix)
    _print_status(status)
    console.print("[pass]lab is up[/]  try: vxcap run --lab --pair worker,worker3")


@lab.command("down")
@lab_file_option
@prefix_option
@_guarded
def lab_down(lab_file, prefix) -> None:
    """Remove everything the lab made, and nothing else."""
    _require_root("vxcap lab down")
    from vxcap.cli.console import console
    from vxcap.targets.lab import choose_lab, lab_down as remove

    removed = remove(choose_lab(prefix, lab_file), prefix)
    console.print(f"removed {len(removed.namespaces)} namespace(s)"
                  + (f": {', '.join(removed.namespaces)}" if removed.namespaces else ""))


@lab.command("status")
@lab_file_option
@prefix_option
@_guarded
def lab_status(lab_file, prefix) -> None:
    """Show what exists of the lab. Exit 0 when healthy, 1 when missing or broken."""
    _require_root("vxcap lab status")
    from vxcap.targets.lab import choose_lab, lab_status as inspect

    status = inspect(choose_lab(prefix, lab_file), prefix)
    _print_status(status)
    raise _Fail(ExitStatus.SUCCESS if status.healthy else ExitStatus.VERDICT_FAILED)


def _print_status(status) -> None:
    from rich.table import Table

    from vxcap.cli.console import console

    table = Table(title=f"lab {status.prefix}-*", title_justify="left")
    table.add_column("Namespace", no_wrap=True)
    table.add_column("Role")
    table.add_column("State")
    for ns in status.namespaces:
        state = "present" if ns.exists else "[fail]missing[/]"
        table.add_row(ns.name, ns.role + (" (adopted)" if ns.adopted else ""), state)
    console.print(table)
    for node in status.nodes:
        for check in node.problems():
            console.print(f"[fail]✗[/] {node.node}: {check.name}: {check.detail}", soft_wrap=True)
    word = "[pass]healthy[/]" if status.healthy else ("[fail]broken[/]" if status.exists else "[fail]not built[/]")
    console.print(f"lab is {word}")


from vxcap.cli.cmd_report import report_command  # noqa: E402 - registered after the group exists

cli.add_command(report_command)
from vxcap.cli.cmd_images import images_command  # noqa: E402

cli.add_command(images_command)


def main() -> None:
    cli(prog_name="vxcap")
