"""`vxcap doctor`: can a run start here? One line per check, and the fix under each that fails."""

from __future__ import annotations

import click

from vxcap.cli.guard import Fail, guarded
from vxcap.cli.help import GroupedCommand
from vxcap.cli.options import cluster_options
from vxcap.exit_status import ExitStatus

EXAMPLES = """
vxcap doctor --lab                        # this machine, for the embedded lab
vxcap doctor --context kind-k01           # a cluster: API server, RBAC, Calico, Docker, capture image
"""

_MARK = {"ok": "[pass]✓[/]", "warn": "[warn]![/]", "fail": "[fail]✗[/]", "skip": "[hint]-[/]"}


@click.command(
    cls=GroupedCommand, examples=EXAMPLES,
    sections=(("Where", ("lab", "kubeconfig", "context", "namespace", "capture_namespace", "capture_image")),),
    cluster_only=("kubeconfig", "context", "namespace", "capture_namespace", "capture_image"),
)
@click.option("--lab", is_flag=True, help="Check this machine for the embedded lab (root, tcpdump, ip, VXLAN).")
@cluster_options
@click.option("--namespace", default="vxcap", show_default=True, help="Namespace the run's pods would live in.")
@click.option("--capture-namespace", default=None, help="Namespace capture pods would run in (default: --namespace).")
@click.option("--capture-image", default=None, help="Capture image to look for (default: vxcap's).")
@guarded()
def doctor(lab, kubeconfig, context, namespace, capture_namespace, capture_image) -> None:
    """Check what a run needs before it starts, one line each with the fix.

    Reads only: nothing is created. Exit status 0 when a run can start, 1 when not.
    """
    from rich.markup import escape

    from vxcap.cli.console import console
    from vxcap.core.doctor import can_start
    from vxcap.core.names import check_namespace

    check_namespace(namespace, "--namespace")
    if capture_namespace is not None:
        check_namespace(capture_namespace, "--capture-namespace")
    if lab:
        from vxcap.doctor import lab_checks

        checks = lab_checks()
        target = "the embedded lab"
    else:
        from vxcap.core.capture import CAPTURE_IMAGE
        from vxcap.doctor import cluster_checks

        checks = cluster_checks(kubeconfig, context, namespace, capture_image or CAPTURE_IMAGE, capture_namespace)
        target = "a cluster run"
    width = max(len(check.name) for check in checks)
    for check in checks:
        console.print(f"{_MARK[check.level.value]} {escape(check.name):<{width}}  {escape(check.detail)}", soft_wrap=True)
        if check.fix and check.level.value in ("fail", "warn"):
            console.print(f"  {'':<{width}}  [hint]fix:[/] {escape(check.fix)}", soft_wrap=True)
    if can_start(checks):
        console.print(f"[pass]ready[/]: {target} can start here")
        raise Fail(ExitStatus.SUCCESS)
    console.print(f"[fail]not ready[/]: fix the ✗ lines above before {target}")
    raise Fail(ExitStatus.VERDICT_FAILED)
