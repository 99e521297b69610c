"""junit.xml as vxcap wrote it with junitparser (the reference below, its code before it was
replaced) and as the standard library's DOM writes it now: the same bytes, whatever the report says."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from vxcap.report.junit import SUITE, write_junit


def reference_junit_xml(report):
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
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    return xml


# Every character XML 1.0 allows but the surrogates, with the ones that need escaping and the
# whitespace an attribute or a text node must keep made likely.
TEXT = st.text(st.sampled_from('<>&"\' \t\r\n;é→ab') | st.characters(blacklist_categories=("Cs",)), max_size=30)

FLOWS = st.fixed_dictionaries({
    "src_node": TEXT, "dst_node": TEXT, "expected": st.sampled_from(["vxlan", "plain"]), "expected_because": TEXT,
    "observed": TEXT, "packets": st.integers(0, 10**6), "vni": st.none() | st.integers(0, 2**24),
    "udp_dport": st.none() | st.integers(0, 65535), "outer_src": TEXT, "outer_dst": TEXT, "wireshark_filter": TEXT,
    "verdict": st.sampled_from(["pass", "fail"]), "reasons": st.lists(TEXT, max_size=3),
})
REPORTS = st.fixed_dictionaries(
    {"errors": st.lists(TEXT, max_size=2), "flows": st.lists(FLOWS, max_size=4)},
    optional={"cross_check": st.none() | st.fixed_dictionaries({"tool": TEXT, "disagreements": st.lists(TEXT, max_size=2)})},
)


def both(report, tmp_path):
    outcomes = []
    for name, write in (("ref.xml", lambda r, p: reference_junit_xml(r).write(str(p), pretty=True)),
                        ("new.xml", write_junit)):
        try:
            write(report, tmp_path / name)
            outcomes.append((tmp_path / name).read_bytes())
        except ValueError as err:  # lxml refuses what XML cannot carry; so must the new writer
            outcomes.append(type(err))
    return outcomes


@settings(max_examples=300, deadline=None)
@given(REPORTS)
def test_the_same_bytes_as_junitparser_wrote(tmp_path_factory, report):
    ref, new = both(report, tmp_path_factory.mktemp("junit"))
    assert new == ref


def test_a_real_looking_report(tmp_path):
    flow = {"src_node": "k01-worker", "dst_node": "k01-worker3", "expected": "vxlan",
            "expected_because": "different subnets: 10.10.20.13 is not in 10.10.10.0/24", "observed": "vxlan",
            "packets": 6, "vni": 4096, "udp_dport": 4789, "outer_src": "10.10.10.11", "outer_dst": "10.10.20.13",
            "wireshark_filter": "ip.src==192.168.1.1 && ip.dst==192.168.3.1", "verdict": "fail",
            "reasons": ["VNI 4097, expected 4096", "outer source <10.0.0.1>"]}
    report = {"errors": ["capture on k01-worker2/eth1 did not start: \"tcpdump\" & co"],
              "flows": [flow, dict(flow, verdict="pass", reasons=[])],
              "cross_check": {"tool": "tshark", "agreed": False, "disagreements": ["a -> b: tshark reads plain"]}}
    ref, new = both(report, tmp_path)
    assert isinstance(ref, bytes) and new == ref


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m"])
def test_what_xml_cannot_carry_is_refused_by_both(tmp_path, bad):
    ref, new = both({"errors": [f"a{bad}b"], "flows": []}, tmp_path)
    assert ref is new is ValueError
