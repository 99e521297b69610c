"""`vxcap images load --kind`: docker save against the real engine, kind's argv as data.

kind cannot be installed here, so its command line is checked as data, and the
CLI runs against a `kind` on PATH that records its argv and reads the archive
it was given (the archive must hold the image under its name, as kind needs).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.docker_support import capture_image, docker_engine  # noqa: F401 (fixtures)
from vxcap.adapters.images import ImageLoadError, kind_load_argv, save_image
from vxcap.cli.main import cli
from vxcap.core.capture import CAPTURE_IMAGE
from vxcap.exit_status import ExitStatus


def test_kind_load_argv_is_an_image_archive_load():
    assert kind_load_argv("/tmp/x.tar", "k01") == ["kind", "load", "image-archive", "/tmp/x.tar", "--name", "k01"]
    assert kind_load_argv(Path("/tmp/x.tar"), "k01", ["k01-worker", "k01-worker3"])[-2:] == ["--nodes", "k01-worker,k01-worker3"]
    assert "docker-image" not in kind_load_argv("/tmp/x.tar", "k01")  # fails for multi-platform images (containerd store)


def archive_tags(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return [tag for entry in manifest for tag in entry.get("RepoTags") or []]


def test_docker_save_keeps_the_images_name(docker_engine, capture_image, tmp_path):
    path = save_image(docker_engine, capture_image, tmp_path / "image.tar")
    assert archive_tags(path) == [capture_image]


def test_saving_an_image_the_engine_lacks_says_how_to_build_it(docker_engine, tmp_path):
    with pytest.raises(ImageLoadError) as err:
        save_image(docker_engine, "vxcap/not-built:never", tmp_path / "x.tar")
    assert str(err.value).startswith("image vxcap/not-built:never is not in the local Docker engine: build it first")


RECORDING_KIND = """#!{python}
import json, sys, tarfile
with tarfile.open(sys.argv[3]) as tar:
    tags = [t for e in json.load(tar.extractfile("manifest.json")) for t in e.get("RepoTags") or []]
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "tags": tags}}) + "\\n")
"""


@pytest.fixture
def kind_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "kind.log"
    kind = bin_dir / "kind"
    kind.write_text(RECORDING_KIND.format(python=sys.executable, log=str(log)))
    kind.chmod(kind.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_images_load_saves_and_loads_vxcaps_image_once(kind_on_path, capture_image):
    result = CliRunner().invoke(cli, ["images", "load", "--kind", "k01"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    calls = [json.loads(line) for line in kind_on_path.read_text().splitlines()]
    # One image serves test pods and capture helpers: loaded once.
    assert len(calls) == 1
    argv = calls[0]["argv"]
    assert argv[:2] == ["load", "image-archive"] and argv[3:] == ["--name", "k01"]
    assert calls[0]["tags"] == [CAPTURE_IMAGE]
    assert not Path(argv[2]).exists()  # the archive went with its temporary directory
    assert f"loaded {CAPTURE_IMAGE} into Kind cluster k01" in result.output


def test_images_load_without_kind_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["images", "load", "--kind", "k01"])
    assert result.exit_code == ExitStatus.USAGE
    said = " ".join(result.output.split())
    assert "kind is not on PATH" in said and "kind load image-archive image.tar --name k01" in said
