"""Messages that tell the truth: every command ends the same way on Ctrl-C and on an
OSError, and the table's packet column means one thing."""

import json

import pytest
from click.testing import CliRunner

from tests.run_support import W, W2, W3, healthy_frames, write_run
from vxcap.cli.main import cli
from vxcap.cli.render import packets_cell, packets_header
from vxcap.exit_status import ExitStatus


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_ctrl_c_in_report_exits_130_with_one_line_not_aborted(tmp_path, monkeypatch):
    run = write_run(tmp_path, healthy_frames())
    assert invoke("analyze", run).exit_code == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C came while the page was drawn

    monkeypatch.setattr("vxcap.report.html.render_html", interrupted)
    result = invoke("report", run)
    assert result.exit_code == ExitStatus.INTERRUPTED, result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert result.stderr.strip() == "error: interrupted (this command has nothing to remove)"


def test_ctrl_c_in_analyze_says_nothing_was_removed(tmp_path, monkeypatch):
    run = write_run(tmp_path, healthy_frames())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("vxcap.pipeline.decode_point", interrupted)
    result = invoke("analyze", run)
    assert result.exit_code == ExitStatus.INTERRUPTED
    assert "removed" not in result.stderr.replace("nothing to remove", "")
    assert "interrupted (this command has nothing to remove)" in result.stderr


def test_an_oserror_while_analyze_writes_is_one_line_and_exit_2(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    (run / "junit.xml").mkdir()  # root ignores permissions; a directory in the way stops anyone
    result = invoke("analyze", run)
    assert result.exit_code == ExitStatus.USAGE, result.output
    (line,) = [line for line in result.stderr.splitlines() if "junit.xml" in line]
    assert line.startswith("error: ") and "Is a directory" in line, result.stderr
    assert "Traceback" not in result.output


def test_analyze_quiet_and_json(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    quiet = invoke("analyze", run, "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    (line,) = quiet.stdout.splitlines()
    assert line.startswith("PASS 4/4 directions as expected")
    as_json = invoke("analyze", run, "--json")
    assert json.loads(as_json.stdout) == json.loads((run / "report.json").read_text())


def test_analyze_shows_echoes_sent_and_answered_at_both_ends(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    result = invoke("analyze", run)
    report = json.loads((run / "report.json").read_text())
    assert packets_header(report) == "Echoes"
    flows = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    d = flows[(W, W2)]["delivery"]
    assert packets_cell(flows[(W, W2)]) == (f"{d['left_sender']} → {d['arrived_receiver']}\n"
                                            f"{d['replies_back']} ← {d['answered']}")
    assert d["left_sender"] > 0 and "Echoes: requests leaving the sender's underlay" in result.stdout


def test_without_delivery_counts_the_column_is_this_directions_frames_at_each_end(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    invoke("analyze", run)
    report = json.loads((run / "report.json").read_text())
    for flow in report["flows"]:
        flow.pop("delivery")  # a report.json from before delivery was counted
    assert packets_header(report) == "Frames"
    flows = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    seen = flows[(W, W2)]["seen_on"]
    assert packets_cell(flows[(W, W2)]) == f"{seen[W + '/eth1']} → {seen[W2 + '/eth1']}"
    lost = dict(flows[(W, W3)], seen_on={f"{W}/eth1": 3, f"{W3}/eth1": 0})
    assert packets_cell(lost) == "3 → 0"
    assert packets_cell(dict(lost, seen_on={f"{W}/eth1": 3})) == "3 → ?"  # no capture on the receiver


def test_with_delivery_counts_the_column_is_echo_requests_and_replies_at_both_ends():
    flow = {"src_node": W, "dst_node": W3, "seen_on": {f"{W}/eth1": 40},
            "delivery": {"sent": 3, "left_sender": 3, "arrived_receiver": 3, "answered": 2, "replies_back": 1}}
    assert packets_header({"flows": [flow]}) == "Echoes"
    assert packets_cell(flow) == "3 → 3\n1 ← 2"
