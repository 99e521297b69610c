from junitparser import Error, JUnitXml

from vxcap.report.json_report import report_dict
from vxcap.report.junit import write_junit


def test_setup_failure_still_writes_a_red_junit(tmp_path):
    report = report_dict([], run_id="r", errors=["provision failed: pod never became Ready"])
    assert report["verdict"] == "fail"
    write_junit(report, tmp_path / "junit.xml")
    suite = list(JUnitXml.fromfile(str(tmp_path / "junit.xml")))[0]
    (case,) = list(suite)
    assert case.name == "setup"
    assert isinstance(case.result[0], Error) and "pod never became Ready" in case.result[0].message


def test_no_flows_is_never_a_pass():
    assert report_dict([])["verdict"] == "fail"
