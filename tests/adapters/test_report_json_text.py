"""report.json's text: the same JSON whatever its size, one direction per line past the limit."""

import json

from vxcap.adapters import rundir
from vxcap.adapters.rundir import FLOWS_ONE_PER_LINE, report_json_text, write_report_json


def report_of(n: int) -> dict:
    flows = [{"src_node": f"n{i}", "dst_node": f"n{i + 1}", "verdict": "pass" if i % 7 else "fail",
              "reasons": [] if i % 7 else ['VNI 4097, expected 4096 "quoted" \\ ünïcode'],
              "mtu": {"flows": [i], "mtus": {"src": {"node": f"n{i}", "underlay_mtu": 1500}}, "header_shares": [0.25]}}
             for i in range(n)]
    return {"version": 1, "verdict": "fail", "summary": {"flows": n}, "errors": [], "flows": flows,
            "spot_check": {"flows": n}, "plan": {"pairs": [{"flows": []}]}, "evidence": {"flows": {}}}


def test_a_small_report_is_indented_as_before():
    report = report_of(FLOWS_ONE_PER_LINE)
    assert report_json_text(report) == json.dumps(report, indent=2)


def test_a_large_report_is_the_same_json_with_one_direction_per_line(tmp_path):
    report = report_of(FLOWS_ONE_PER_LINE + 200)
    text = write_report_json(tmp_path / "report.json", report)
    assert json.loads(text) == report == json.loads((tmp_path / "report.json").read_text())
    lines = text.splitlines()
    flow_lines = [line for line in lines if line.startswith('    {"src_node": ')]
    assert len(flow_lines) == len(report["flows"])
    assert [json.loads(line.rstrip(",")) for line in flow_lines] == report["flows"]
    # everything but the flows stays indented as before; the nested, empty "flows" keys are left alone
    assert lines[:2] == ["{", '  "version": 1,'] and '    "flows": []' in text and '  "spot_check": {' in text
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == rundir.names.FILE_MODE
