"""junit.xml: one test case per direction, and a `setup` case when the run broke
before it could judge, so CI shows a red test instead of a missing file.

Written with the standard library's DOM, as junitparser wrote it before (its elements and
attributes in its order, pretty-printed by the same minidom call): importing junitparser cost
about 20 ms of every `vxcap analyze`. tests/report/test_junit_bytes.py holds the two to the same
bytes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.dom.minidom import Document, Element

SUITE = "vxcap"

# What lxml (junitparser's serializer) refuses in a string: NUL and the C0 controls but tab,
# newline and carriage return, and the non-characters and surrogates XML 1.0 leaves out.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    if _NOT_XML.search(value):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    return value


def _element(doc: Document, tag: str, **attributes: str) -> Element:
    element = doc.createElement(tag)
    for name, value in attributes.items():
        element.setAttribute(name, _xml_text(value))
    return element


def _case(doc: Document, name: str, classname: str) -> Element:
    return _element(doc, "testcase", name=name, classname=classname)


def _result(doc: Document, case: Element, tag: str, message: str, kind: str) -> None:
    # junitparser left an empty message out
    case.appendChild(_element(doc, tag, **({"message": message} if message else {}), type=kind))


def junit_document(report: dict[str, Any]) -> Document:
    doc = Document()
    suites = doc.appendChild(doc.createElement("testsuites"))
    cases: list[Element] = []
    failures = errors = 0
    for error in report.get("errors", []):
        case = _case(doc, "setup", SUITE)
        _result(doc, case, "error", error, "error")
        errors += 1
        cases.append(case)
    for flow in report.get("flows", []):
        # A dual-stack run judges each family: the IPv6 case says so, so the two never share a name.
        family = ", IPv6" if flow.get("family") == "IPv6" else ""
        name = f"{flow['src_node']} -> {flow['dst_node']} ({flow['expected']}{family})"
        case = _case(doc, name, f"{SUITE}.{flow['src_node']}~{flow['dst_node']}")
        if flow["verdict"] != "pass":
            _result(doc, case, "failure", "; ".join(flow["reasons"]), "verdict")
            failures += 1
        out = doc.createElement("system-out")
        text = _xml_text(
            f"expected {flow['expected']} ({flow['expected_because']}); observed {flow['observed']}; "
            f"packets {flow['packets']}; VNI {flow['vni']}; UDP port {flow['udp_dport']}; "
            f"outer {flow['outer_src']} -> {flow['outer_dst']}; "
            f"wireshark filter: {flow['wireshark_filter']}"
        )
        out.appendChild(doc.createTextNode(text))
        case.appendChild(out)
        cases.append(case)
    check = report.get("cross_check")
    if check is not None:
        case = _case(doc, f"{check['tool']} cross-check", SUITE)
        if check["disagreements"]:
            _result(doc, case, "failure", "; ".join(check["disagreements"]), "cross-check")
            failures += 1
        cases.append(case)
    suite = _element(doc, "testsuite", name=SUITE, tests=str(len(cases)), errors=str(errors),
                     failures=str(failures), skipped="0", time="0")
    for case in cases:
        suite.appendChild(case)
    suites.appendChild(suite)
    return doc


def write_junit(report: dict[str, Any], path: Path) -> None:
    content = junit_document(report).toprettyxml(encoding="utf-8")
    with open(path, "wb") as out:
        out.write(content)
