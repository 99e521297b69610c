"""junit.xml: one test case per direction, and a `setup` case when the run broke
before it could judge, so CI shows a red test instead of a missing file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

SUITE = "vxcap"


def junit_xml(report: dict[str, Any]) -> JUnitXml:
    suite = TestSuite(SUITE)
    for error in report.get("errors", []):
        case = TestCase("setup", classname=SUITE)
        case.result = [Error(error, "error")]
        suite.append(case)
    for flow in report.get("flows", []):
        name = f"{flow['src_node']} -> {flow['dst_node']} ({flow['expected']})"
        case = TestCase(name, classname=f"{SUITE}.{flow['src_node']}~{flow['dst_node']}")
        if flow["verdict"] != "pass":
            case.result = [Failure("; ".join(flow["reasons"]), "verdict")]
        case.system_out = (
            f"expected {flow['expected']} ({flow['expected_because']}); observed {flow['observed']}; "
            f"packets {flow['packets']}; VNI {flow['vni']}; UDP port {flow['udp_dport']}; "
            f"outer {flow['outer_src']} -> {flow['outer_dst']}; "
            f"wireshark filter: {flow['wireshark_filter']}"
        )
        suite.append(case)
    check = report.get("cross_check")
    if check is not None:
        case = TestCase(f"{check['tool']} cross-check", classname=SUITE)
        if check["disagreements"]:
            case.result = [Failure("; ".join(check["disagreements"]), "cross-check")]
        suite.append(case)
    # Counted once: junitparser's add_testcase recounts the whole suite on every
    # case, quadratic in the directions (seconds for an all-pairs run on 40 nodes).
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    return xml


def write_junit(report: dict[str, Any], path: Path) -> None:
    junit_xml(report).write(str(path), pretty=True)
