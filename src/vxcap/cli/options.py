"""Options several commands share, declared once."""

from __future__ import annotations

from pathlib import Path

import click


def _apply(fn, options):
    for option in reversed(options):
        fn = option(fn)
    return fn


lab_file_option = click.option(
    "--lab-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Lab description (YAML). Default: the reference Calico overlay lab (topology/k01-lab.yaml).",
)
nodes_option = click.option(
    "--nodes", type=int, default=None,
    help="Generate a larger lab on the reference pattern with this many nodes (2-256) instead.",
)
subnets_option = click.option(
    "--subnets", type=int, default=None, help="With --nodes: how many underlay subnets to spread them over.",
)
prefix_option = click.option(
    "--prefix", default="vxcap", show_default=True,
    help="Name prefix of the lab's network namespaces, so several labs can coexist.",
)


direct_routing_option = click.option(
    "--direct-routing/--no-direct-routing", "direct_routing", default=None,
    help="With --cni flannel, net-conf.json's DirectRouting: on sends plain to peers reached without a gateway "
         "(the same subnet) and VXLAN to the rest; off (Flannel's default) always VXLAN.",
)


ipip_mode_option = click.option(
    "--ipip-mode", "ipip_mode", type=click.Choice(["always", "cross-subnet"]), default=None,
    help="With --overlay ipip, the IPPool's ipipMode: always, or cross-subnet (the default: plain within a subnet).",
)


def lab_options(lab_help: str):
    """--lab (saying `lab_help`) and what describes the embedded lab."""
    def decorate(fn):
        return _apply(fn, [click.option("--lab", is_flag=True, help=lab_help),
                           lab_file_option, nodes_option, subnets_option, prefix_option])

    return decorate


def cluster_options(fn):
    return _apply(fn, [
        click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
                     help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config), like kubectl."),
        click.option("--context", default=None, help="Kubeconfig context to use, like kubectl."),
    ])


def output_options(fn):
    return _apply(fn, [
        click.option("--json", "as_json", is_flag=True, help="Print report.json on stdout, and nothing else there."),
        click.option("--quiet", "-q", is_flag=True, help="Print only the verdict line (no progress, no table)."),
    ])


def coverage_options(fn):
    """--coverage and what chooses among its plans (vxcap.core.coverage)."""
    return _apply(fn, [
        click.option("--coverage", is_flag=True,
                     help="Plan O(N) pairs: every node sends and receives each wire format with two peers, every "
                          "ordered pair of subnets and of node classes is crossed; each pair says why."),
        click.option("--seed", type=int, default=None, help="With --coverage: which of the plans (default 0)."),
        click.option("--peers", type=click.IntRange(1, 16), default=None,
                     help="With --coverage: different peers per node, role and wire format (default 2: enough "
                          "to name a broken node)."),
    ])


def coverage_settings(coverage: bool, seed: int | None, peers: int | None) -> tuple[int, int]:
    """(seed, peers); refused without --coverage, where they would mean nothing."""
    if not coverage and (seed is not None or peers is not None):
        raise click.UsageError("--seed and --peers go with --coverage")
    return (0 if seed is None else seed), (2 if peers is None else peers)


CNI_CHOICES = ("auto", "calico", "flannel", "cilium", "antrea")


def cni_option(default: str, help: str):
    # A short metavar: the five choices as one would widen every option's column in --help.
    return click.option("--cni", type=click.Choice(CNI_CHOICES), metavar="CNI", default=default, show_default=True,
                        help=f"{help} One of {', '.join(CNI_CHOICES)}.")
