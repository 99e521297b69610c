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
    help="Generate a larger lab on the reference pattern with this many nodes (2-64) instead.",
)
subnets_option = click.option(
    "--subnets", type=int, default=None, help="With --nodes: how many underlay subnets to spread them over.",
)
prefix_option = click.option(
    "--prefix", default="vxcap", show_default=True,
    help="Name prefix of the lab's network namespaces, so several labs can coexist.",
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
