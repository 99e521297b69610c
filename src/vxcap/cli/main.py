"""`vxcap`: thin click commands. Heavy imports (scapy, the adapters) happen inside
the commands, so `vxcap --help` answers at once."""

from __future__ import annotations

from pathlib import Path

import click

from vxcap import __version__
from vxcap.cli.guard import Fail, Interrupted, add_no_cluster_hints, guarded, require_root
from vxcap.cli.help import GroupedCommand
from vxcap.cli.options import (
    cluster_options,
    cni_option,
    coverage_options,
    coverage_settings,
    direct_routing_option,
    ipip_mode_option,
    lab_file_option,
    lab_options,
    nodes_option,
    output_options,
    prefix_option,
    subnets_option,
)
from vxcap.exit_status import ExitStatus


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
      vxcap doctor --lab                   # can a run start here?
      vxcap run --lab --pair worker,worker3 --pair worker,worker2
      vxcap analyze captures/<run-id>      # judge a saved run again
      vxcap lab status                     # what the lab has built

    Exit status: 0 all verdicts passed, 1 a verdict failed,
    2 bad usage or input, 130 interrupted.
    """


TOPOLOGY_EXAMPLES = """
vxcap topology                 # the cluster of your kubeconfig (reads only)
vxcap topology --lab --json    # the embedded lab, for machines
vxcap topology --lab --nodes 64 --subnets 8 --coverage   # the pairs `run --coverage` would test
vxcap topology --cni flannel   # what Flannel's ConfigMap and node annotations promise
"""


@cli.command(
    cls=GroupedCommand, examples=TOPOLOGY_EXAMPLES,
    sections=(("Where: the embedded lab", ("lab", "lab_file", "nodes", "subnets", "prefix")),
              ("Where: a cluster (the default)", ("kubeconfig", "context", "cni")),
              ("A coverage plan", ("coverage", "seed", "peers")), ("Output", ("as_json",))),
    lab_only=("lab_file", "nodes", "subnets", "prefix"), cluster_only=("kubeconfig", "context", "cni"),
)
@lab_options("Show the embedded lab's topology instead of a cluster's.")
@cluster_options
@cni_option("auto", "Which CNI's configuration to read: auto finds it by its agent DaemonSet and ConfigMap.")
@coverage_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: the plan `vxcap run` builds from.")
@guarded()
def topology(lab, lab_file, nodes, subnets, prefix, kubeconfig, context, cni, coverage, seed, peers, as_json) -> None:
    """What vxcap found (nodes, underlay, pod blocks, VTEPs) and the wire format
    every ordered node pair must use, with the reason."""
    from vxcap.core.plan import all_paths
    from vxcap.report.topology import topology_dict

    seed, peers = coverage_settings(coverage, seed, peers)
    notes: tuple[str, ...] = ()
    if lab:
        from vxcap.targets.lab import choose_lab

        topo = choose_lab(prefix, lab_file, nodes, subnets).spec.topology
    else:
        from vxcap.adapters.kube import KubeCluster
        from vxcap.adapters.kube.cni import discover as discover_cni

        cluster = KubeCluster(kubeconfig, context)
        try:
            try:
                found = discover_cni(cluster.conn, cni)
            except Exception as err:
                add_no_cluster_hints(err, "vxcap topology --lab")
                raise
        finally:
            cluster.close()
        notes = found.notes
        if found.other is not None:
            return _other_cni_topology(found.other, notes, coverage, as_json)
        assert found.calico is not None
        topo = found.calico.topology
    if coverage:
        from vxcap.core.coverage import coverage_plan
        from vxcap.report.json_report import coverage_dict

        # The plan replaces the N² path list: at the sizes it is for, that list is the problem.
        data = topology_dict(topo, ())
        data["coverage"] = coverage_dict(coverage_plan(topo, seed, peers), topo)
    else:
        data = topology_dict(topo, all_paths(topo))
    data["cni"] = "calico"
    from vxcap.cli.console import console

    if as_json:
        from vxcap.cli.console import raw

        raw(__import__("json").dumps(data, indent=2))
        return
    from vxcap.cli.render import coverage_lines, coverage_table, topology_tables

    for table in topology_tables(data):
        console.print(table)
    if coverage:
        console.print(coverage_table(data["coverage"]))
        for line in coverage_lines(data["coverage"]):
            console.print(line, soft_wrap=True)
    for note in notes:
        console.print(f"[hint]note: {note}[/]", soft_wrap=True)


def _other_cni_topology(found, notes: tuple[str, ...], coverage: bool, as_json: bool) -> None:
    from vxcap.cli.console import console, error
    from vxcap.report.cni_topology import cni_topology_dict

    if coverage:
        error(f"--coverage plans Calico's wire formats only; this cluster runs {found.cni.value}")
        raise Fail(ExitStatus.USAGE)
    data = cni_topology_dict(found)
    if as_json:
        from vxcap.cli.console import raw

        data["notes"] = list(notes)
        raw(__import__("json").dumps(data, indent=2))
        return
    from vxcap.cli.render_cni import cni_topology_tables

    for table in cni_topology_tables(data):
        console.print(table)
    for note in notes:
        console.print(f"[hint]note: {note}[/]", soft_wrap=True)


@cli.command()
@cluster_options
@click.option("--namespace", default="vxcap", show_default=True, help="Namespace vxcap's pods live in.")
@click.option("--capture-namespace", default=None, help="Also clean this namespace of capture pods (as given to run).")
@guarded(nothing_made=False)
def cleanup(kubeconfig, context, namespace, capture_namespace) -> None:
    """Remove everything vxcap left in the cluster and the local Docker engine (by label),
    e.g. after --keep or a run that was killed hard. The embedded lab: `vxcap lab down`."""
    from vxcap.cli.console import console
    from vxcap.core.names import check_namespace
    from vxcap.targets.cluster import cleanup_everything

    check_namespace(namespace, "--namespace")
    if capture_namespace is not None:
        check_namespace(capture_namespace, "--capture-namespace")
    try:
        pods, containers = cleanup_everything(kubeconfig, context, namespace, capture_namespace)
    except KeyboardInterrupt:
        raise Interrupted("some of vxcap's pods or capture containers may remain: run `vxcap cleanup` again") from None
    console.print(f"removed {len(pods)} pod(s) and {len(containers)} capture container(s)")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--cross-check", is_flag=True, help="Also decode with tshark's dissectors (pyshark); any disagreement fails.")
@click.option("--evidence/--no-evidence", default=None,
              help="Write evidence/*.pcapng (default: when the captures hold at most 64 MiB).")
@output_options
@guarded()
def analyze(run_dir, cross_check, evidence, as_json, quiet) -> None:
    """Decode and judge a saved run again, offline, from RUN_DIR/manifest.json.

    Works on captures taken by hand too: write a manifest.json beside them
    (see docs/manifest.md). Rewrites RUN_DIR/report.json, junit.xml and report.html.
    """
    from vxcap.stages.scapy_worker import ScapyWorker

    with ScapyWorker() as worker:  # before the pipeline's imports: scapy's own import runs beside them
        from vxcap.cli.live import LiveProgress
        from vxcap.pipeline import analyze as analyze_run

        with LiveProgress(quiet=quiet) as live:
            outcome = analyze_run(run_dir, progress=live.stage, cross_check=cross_check, evidence=evidence,
                                  worker=worker)
    from vxcap.cli.show import show_outcome

    show_outcome(outcome, as_json=as_json, quiet=quiet)
    raise Fail(ExitStatus.SUCCESS if outcome.passed else ExitStatus.VERDICT_FAILED)


@cli.group()
def lab() -> None:
    """The embedded lab: the reference topology in network namespaces (root).

    A switch namespace with one gateway per subnet, one namespace per node with
    eth1 and vxlan.calico shaped like Calico's data plane (or flannel.1 like
    Flannel's, with --cni flannel; cilium_vxlan like Cilium's tunnel, with
    --cni cilium; Open vSwitch bridges with a Geneve port like Antrea's, with
    --cni antrea), and one test pod per node. Sealed: nothing touches the
    host's interfaces.
    """


@lab.command("up")
@lab_file_option
@nodes_option
@subnets_option
@prefix_option
@click.option("--overlay", type=click.Choice(["vxlan", "vxlan6", "dual", "wireguard", "wireguard6", "wireguard-dual", "ipip"]), default=None,
              help="Calico's data plane to build: vxlan (IPv4, the default), vxlan6 (IPv6 only), dual (both), "
                   "wireguard (wireguard-go), wireguard6 (IPv6 only, wg-v6.cali), wireguard-dual (both, each its device), "
                   "ipip (tunl0; where the kernel has no ipip module, a userspace forwarder per node does the "
                   "encapsulation: RFC 2003 on the wire, as tunl0's).")
@ipip_mode_option
@click.option("--cni", type=click.Choice(["calico", "flannel", "cilium", "antrea"]), default="calico", show_default=True,
              help="Whose data plane: Calico's (--overlay picks which), or Flannel's vxlan backend: flannel.1, "
                   "VNI 1, UDP 8472 (the kernel's default port), MTU underlay - 50, a /24 of 10.244.0.0/16 per node; "
                   "or Cilium's vxlan tunnel: cilium_vxlan on UDP 8472, VNI = the sending pod's identity; or Antrea's Geneve "
                   "(UDP 6081, VNI 0) through Open vSwitch's userspace datapath.")
@direct_routing_option
@click.option("--traffic-encap-mode", "encap_mode", type=click.Choice(["encap", "hybrid"]), default=None,
              help="With --cni antrea, antrea-agent.conf's trafficEncapMode: encap (the default) tunnels to every "
                   "peer, hybrid only to peers outside the node's subnet (plain within it).")
@guarded(nothing_made=False)
def lab_up(lab_file, nodes, subnets, prefix, overlay, ipip_mode, cni, direct_routing, encap_mode) -> None:
    """Build the lab (idempotent; repairs or replaces a broken one).

    \b
    Examples:
      vxcap lab up                           # the reference k01 lab
      vxcap lab up --nodes 16 --subnets 4    # a larger lab on the same pattern
      vxcap lab up --overlay dual            # IPv4 over vxlan.calico, IPv6 over vxlan-v6.calico
      vxcap lab up --overlay ipip --ipip-mode always   # IP-in-IP through tunl0 between every pair
      vxcap lab up --cni flannel --direct-routing   # Flannel: plain in a subnet, VXLAN on 8472 across
      vxcap lab up --cni cilium              # Cilium: VXLAN on 8472, each pod's identity as VNI
      vxcap lab up --cni antrea --traffic-encap-mode hybrid   # Antrea: plain in a subnet, Geneve across
    """
    require_root("vxcap lab up")
    from vxcap.cli.console import console
    from vxcap.targets.lab import choose_lab, lab_up as build

    try:
        if cni == "flannel" and direct_routing is None:
            direct_routing = False  # `lab up` says what it builds: Flannel's default
        if encap_mode is not None and cni != "antrea":
            from vxcap.core.errors import InputError

            raise InputError("--traffic-encap-mode is Antrea's: add --cni antrea")
        status = build(choose_lab(prefix, lab_file, nodes, subnets, overlay, cni=cni if cni != "calico" else None,
                                  direct_routing=direct_routing, ipip_mode=ipip_mode,
                                  encap_mode=encap_mode or "encap"), prefix)
    except KeyboardInterrupt:
        raise Interrupted("the lab may be half built: `vxcap lab up` repairs it, `vxcap lab down` removes it") from None
    _print_status(status)
    if status.dataplane == "vxlan":
        console.print("[pass]lab is up[/]  try: vxcap run --lab --pair worker,worker3")
    elif status.dataplane in ("flannel", "cilium", "antrea"):
        console.print(f"[pass]lab is up[/] ({status.dataplane})  try: vxcap run --lab --cni {status.dataplane} --all-pairs")
    else:
        console.print(f"[pass]lab is up[/] ({status.dataplane})")


@lab.command("down")
@lab_file_option
@prefix_option
@guarded(nothing_made=False)
def lab_down(lab_file, prefix) -> None:
    """Remove everything the lab made, and nothing else."""
    require_root("vxcap lab down")
    from vxcap.cli.console import console
    from vxcap.targets.lab import choose_lab, lab_down as remove

    try:
        removed = remove(choose_lab(prefix, lab_file), prefix)
    except KeyboardInterrupt:
        raise Interrupted("part of the lab may remain: run `vxcap lab down` again") from None
    console.print(f"removed {len(removed.namespaces)} namespace(s)"
                  + (f": {', '.join(removed.namespaces)}" if removed.namespaces else ""))


@lab.command("status")
@lab_file_option
@prefix_option
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable: the lab's description (data plane; per node and family its addresses, "
                   "block, pod and encapsulation) and every check.")
@guarded()
def lab_status(lab_file, prefix, as_json) -> None:
    """Show what exists of the lab. Exit 0 when healthy, 1 when missing or broken."""
    require_root("vxcap lab status")
    from vxcap.targets.lab import choose_lab, lab_description, lab_status as inspect

    source = choose_lab(prefix, lab_file)
    status = inspect(source, prefix)
    if as_json:
        from vxcap.cli.console import raw

        raw(__import__("json").dumps({"lab": lab_description(source), "status": status.to_dict()}, indent=2))
    else:
        _print_status(status)
    raise Fail(ExitStatus.SUCCESS if status.healthy else ExitStatus.VERDICT_FAILED)


def _print_status(status) -> None:
    from rich.table import Table

    from vxcap.cli.console import console

    dataplane = "" if status.dataplane == "vxlan" else f" ({status.dataplane})"
    table = Table(title=f"lab {status.prefix}-*{dataplane}", title_justify="left")
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
from vxcap.cli.cmd_doctor import doctor  # noqa: E402
from vxcap.cli.cmd_run import run  # noqa: E402

cli.add_command(run)
cli.add_command(doctor)
cli.add_command(report_command)
from vxcap.cli.cmd_images import images_command  # noqa: E402

cli.add_command(images_command)


def main() -> None:
    cli(prog_name="vxcap")
