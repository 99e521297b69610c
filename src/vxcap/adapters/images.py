"""vxcap's images onto a Kind cluster's nodes: `docker save`, then `kind load image-archive`.

`kind load docker-image` fails for multi-platform images under the containerd
image store of recent Docker releases; an archive saved by the engine and
loaded with `kind load image-archive` does not depend on it. This adapter knows
the Docker engine (through the docker SDK) and the `kind` command line.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from vxcap.core.errors import VxcapError

SAVE_CHUNK = 1 << 20


class ImageLoadError(VxcapError, RuntimeError):
    """Saving or loading an image failed; the message is one line."""


def kind_load_argv(archive: Path | str, cluster: str, nodes: Sequence[str] = ()) -> list[str]:
    """`kind load image-archive` of one archive into the cluster (all its nodes, or those named)."""
    argv = ["kind", "load", "image-archive", str(archive), "--name", cluster]
    if nodes:
        argv += ["--nodes", ",".join(nodes)]
    return argv


def archive_name(image: str) -> str:
    return image.replace("/", "_").replace(":", "_").replace("@", "_") + ".tar"


def save_image(client: docker.DockerClient, image: str, path: Path) -> Path:
    """`docker save IMAGE > path`, through the engine's API (the tag kept, so nodes find it by name)."""
    try:
        found = client.images.get(image)
        with open(path, "wb") as out:
            for chunk in found.save(chunk_size=SAVE_CHUNK, named=image):
                out.write(chunk)
    except docker.errors.ImageNotFound:
        raise ImageLoadError(
            f"image {image} is not in the local Docker engine: build it first (scripts/build-capture-image, "
            "or docker build -t IMAGE images/netshoot-lite)"
        ) from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as err:
        raise ImageLoadError(f"docker save {image} failed: {' '.join(str(err).split())}") from None
    return path


def load_into_kind(
    images: Sequence[str],
    cluster: str,
    nodes: Sequence[str] = (),
    client: docker.DockerClient | None = None,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    on_step: Callable[[str], None] = lambda _: None,
) -> list[str]:
    """Save each image and load it into every node of Kind cluster `cluster`; the argvs run."""
    if shutil.which("kind") is None:
        raise ImageLoadError(
            "kind is not on PATH: install it (https://kind.sigs.k8s.io), or save and load by hand: "
            f"docker save IMAGE -o image.tar && kind load image-archive image.tar --name {cluster}"
        )
    try:
        client = client or docker.from_env(timeout=120)
    except docker.errors.DockerException as err:
        raise ImageLoadError(f"Docker engine not reachable: {' '.join(str(err).split())}") from None
    ran = []
    with tempfile.TemporaryDirectory(prefix="vxcap-images-") as work:
        for image in dict.fromkeys(images):  # once each, in order
            on_step(f"docker save {image}")
            archive = save_image(client, image, Path(work) / archive_name(image))
            argv = kind_load_argv(archive, cluster, nodes)
            on_step(" ".join(argv))
            done = run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                said = " ".join((done.stderr or done.stdout or "").split())[-400:]
                raise ImageLoadError(f"{' '.join(argv[:3])} {image} into {cluster} failed (exit {done.returncode}): {said}")
            ran.append(argv)
    return ran
