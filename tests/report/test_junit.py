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


def flow(src, dst, verdict, reasons=()):
    return {"src_node": src, "dst_node": dst, "expected": "vxlan", "expected_because": "different subnets",
            "observed": "vxlan" if verdict == "pass" else "plain", "verdict": verdict, "reasons": list(reasons),
            "packets": 6, "vni": 4096, "udp_dport": 4789, "outer_src": "10.10.10.11", "outer_dst": "10.10.20.13",
            "wireshark_filter": "ip.src==192.168.81.65"}


def test_the_suite_counts_every_case_failure_and_error_as_ci_reads_them(tmp_path):
    import xml.etree.ElementTree as ET

    flows = [flow(f"n{i}", f"n{i + 1}", "pass") for i in range(300)] + [flow("a", "b", "fail", ["VNI 4097, expected 4096"])]
    report = {"errors": ["capture on b/eth1 failed: killed"], "flows": flows,
              "cross_check": {"tool": "tshark", "agreed": False, "disagreements": ["a -> b: tshark reads plain"]}}
    write_junit(report, tmp_path / "junit.xml")
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert len(suite.findall("testcase")) == 303
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "303", "failures": "2", "errors": "1", "skipped": "0"}
