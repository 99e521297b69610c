"""`vxcap images`: getting vxcap's images onto a cluster's nodes."""

from __future__ import annotations

import click

from vxcap.cli.guard import Interrupted, guarded


@click.group("images")
def images_command() -> None:
    """vxcap's image (test pods and capture helpers) on the cluster's nodes.

    Nothing is pulled from a public registry at run time: build the image
    (scripts/build-capture-image, or images/netshoot-lite/Dockerfile), then load
    it onto a Kind cluster with `vxcap images load --kind NAME`, or push it to a
    registry your nodes reach and pass --image/--capture-image to `vxcap run`
    (docs/images.md).
    """


@images_command.command("load")
@click.option("--kind", "kind_cluster", required=True, metavar="NAME", help="The Kind cluster (kind get clusters), e.g. k01.")
@click.option("--image", default=None, help="Test pod image to load. Default: vxcap's (as `vxcap run` uses).")
@click.option("--capture-image", default=None, help="Capture helper image to load. Default: vxcap's.")
@click.option("--nodes", default=None, metavar="A,B", help="Only these nodes (default: every node of the cluster).")
@guarded(nothing_made=False)
def load(kind_cluster, image, capture_image, nodes) -> None:
    """Save the images from the local Docker engine and load them into a Kind cluster:
    `docker save` + `kind load image-archive` (works for multi-platform images
    under Docker's containerd image store, where `kind load docker-image` fails).

    \b
    Example:
      vxcap images load --kind k01
    """
    import sys

    from vxcap.adapters.images import ImageLoadError, load_into_kind
    from vxcap.cli.console import console, error
    from vxcap.core.capture import CAPTURE_IMAGE
    from vxcap.exit_status import ExitStatus

    wanted = [image or CAPTURE_IMAGE, capture_image or CAPTURE_IMAGE]
    node_list = [n for n in (nodes or "").split(",") if n]
    try:
        load_into_kind(wanted, kind_cluster, node_list, on_step=lambda step: console.print(f"[hint]{step}[/]", soft_wrap=True))
    except KeyboardInterrupt:
        raise Interrupted("some nodes may have the images and others not: run `vxcap images load` again") from None
    except ImageLoadError as err:
        error(str(err))
        sys.exit(ExitStatus.USAGE)
    loaded = ", ".join(dict.fromkeys(wanted))
    console.print(f"loaded {loaded} into Kind cluster {kind_cluster}", soft_wrap=True)
