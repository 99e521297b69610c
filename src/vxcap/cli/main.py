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
@click.option("--out", "out_parent", type=click.Path(file_okay=False, path_type=Path), default=Path("captures"),
              show_default=True, help="Parent directory of the run directory captures/<run-id>/.")
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Echo requests per direction.")
@click.option("--keep", is_flag=True, help="Keep what the run built (the lab it brought up) for debugging.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
@_guarded
def run(pairs, all_pairs, lab, lab_file, nodes, subnets, prefix, out_parent, count, keep, as_json) -> None:
    """Send pod-to-pod traffic, capture it on the underlay, and judge each direction.

    \b
    Example:
      vxcap run --lab --pair worker,worker3 --pair worker,worker2

    Leaves captures/<run-id>/ with one pcap per node, routes/neighbours/FDB/links
    of each node beside it, manifest.json, report.json and junit.xml.
    """
    from vxcap.cli.console import error

    if not pairs and not all_pairs:
        error("no pair to test: give --pair A,B (repeatable) or --all-pairs")
        raise _Fail(ExitStatus.USAGE)
    if not lab:
        error("give --lab to target the embedded lab; real clusters (--kubeconfig) are not supported in this version yet")
        raise _Fail(ExitStatus.USAGE)
    _require_root("vxcap run --lab")

    from vxcap.cli.console import progress
    from vxcap.pipeline import RunOptions
    from vxcap.pipeline import run as run_pipeline
    from vxcap.targets.lab import LabTarget, choose_lab

    target = LabTarget(choose_lab(prefix, lab_file, nodes, subnets), prefix=prefix, keep=keep)
    options = RunOptions(pair_specs=tuple(pairs), all_pairs=all_pairs, out_parent=out_parent, ping_count=count)
    outcome = run_pipeline(target, options, progress=progress)
    _render(outcome, as_json)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
@_guarded
def analyze(run_dir, as_json) -> None:
    """Decode and judge a saved run again, offline, from RUN_DIR/manifest.json.

    Works on captures taken by hand too: write a manifest.json beside them
    (see docs/manifest.md). Rewrites RUN_DIR/report.json and junit.xml.
    """
    from vxcap.pipeline import analyze as analyze_run

    _render(analyze_run(run_dir), as_json)


def _render(outcome, as_json: bool) -> None:
    import json

    from vxcap.cli.console import console
    from vxcap.cli.render import reasons, summary, verdict_table

    if as_json:
        console.print_json(json.dumps(outcome.report))
    else:
        if outcome.report["flows"]:
            console.print(verdict_table(outcome.report))
        for line in reasons(outcome.report):
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


def main() -> None:
    cli(prog_name="vxcap")
