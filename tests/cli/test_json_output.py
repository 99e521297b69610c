"""`--json` prints report.json as the run wrote it: the same text, not a second encoding of it."""

from __future__ import annotations

from click.testing import CliRunner

from tests.run_support import healthy_frames, write_run
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus


def test_analyze_json_prints_report_json_as_written(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    result = CliRunner().invoke(cli, ["analyze", str(run), "--json"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert result.stdout == (run / "report.json").read_text()
