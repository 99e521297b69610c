"""`vxcap report RUN_DIR` through click's runner, on runs the tests write with scapy and analyse."""

import json
import stat

import pytest
from click.testing import CliRunner
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

from vxcap.cli.cmd_report import report_command
from vxcap.exit_status import ExitStatus
from vxcap.pipeline import analyze

W, W3 = "k01-worker", "k01-worker3"
UNDERLAY = {W: "10.10.10.11", W3: "10.10.20.13"}
POD = {W: "192.168.81.65", W3: "192.168.209.65"}


def vx(src, dst, vni=4096, n=3, reply=False):
    return [
        Ether() / IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(sport=40000 + i, dport=4789) / VXLAN(vni=vni)
        / Ether() / IP(src=POD[src], dst=POD[dst]) / ICMP(type=0 if reply else 8, seq=i)
        for i in range(n)
    ]


def analysed_run(tmp_path, vni=4096):
    run = tmp_path / "run"
    run.mkdir()
    for node in (W, W3):
        # each pod pings the other and is answered
        wrpcap(str(run / f"{node}-eth1.pcap"),
               vx(W, W3, vni) + vx(W3, W, reply=True) + vx(W3, W) + vx(W, W3, vni, reply=True))
    manifest = {
        "version": 1,
        "overlay": {"mode": "CrossSubnet"},
        "nodes": [{"name": n, "underlay": f"{UNDERLAY[n]}/24", "captures": [{"iface": "eth1", "file": f"{n}-eth1.pcap"}]}
                  for n in (W, W3)],
        "pods": [{"node": n, "ip": POD[n]} for n in (W, W3)],
        "pairs": [{"src": W, "dst": W3}],
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    analyze(run)
    return run


def report(*args):
    return CliRunner().invoke(report_command, [str(a) for a in args])


def test_a_passing_run_shows_its_table_and_writes_report_html(tmp_path):
    run = analysed_run(tmp_path)
    result = report(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert f"{W} → {W3}" in result.output and "PASS 2/2 directions" in result.output
    page = run / "report.html"
    assert f"page: {page}" in result.output
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert '<span class="badge pass big">PASS</span>' in page.read_text()


def test_a_failing_run_exits_1_and_names_the_reason(tmp_path):
    run = analysed_run(tmp_path, vni=4097)
    result = report(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "VNI 4097, expected 4096" in result.output
    assert "VNI 4097, expected 4096" in (run / "report.html").read_text()


def test_html_elsewhere(tmp_path):
    run = analysed_run(tmp_path)
    (run / "report.html").unlink()  # the one analyze wrote: --html must not write another
    (tmp_path / "site").mkdir()
    result = report(run, "--html", tmp_path / "site" / "vxcap.html")
    assert result.exit_code == ExitStatus.SUCCESS
    page = (tmp_path / "site" / "vxcap.html").read_text()
    assert 'href="../run/report.json"' in page
    assert not (run / "report.html").exists()


def test_the_page_is_report_json_as_saved_not_a_new_analysis(tmp_path):
    run = analysed_run(tmp_path)
    saved = json.loads((run / "report.json").read_text())
    saved["flows"][0]["reasons"] = ["a reason only the saved report has"]
    saved["flows"][0]["verdict"] = "fail"
    saved["verdict"] = "fail"
    (run / "report.json").write_text(json.dumps(saved))
    result = report(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "a reason only the saved report has" in (run / "report.html").read_text()


@pytest.mark.parametrize("mangle,message", [
    (lambda run: (run / "report.json").unlink(), "report.json does not exist: judge the run first"),
    (lambda run: (run / "report.json").write_text("{oops"), "report.json is not JSON"),
    (lambda run: (run / "report.json").write_text("[]"), "is not a vxcap report"),
    (lambda run: (run / "manifest.json").unlink(), "manifest.json does not exist"),
])
def test_broken_run_directories_are_one_line_usage_errors(tmp_path, mangle, message):
    run = analysed_run(tmp_path)
    mangle(run)
    result = report(run)
    assert result.exit_code == ExitStatus.USAGE
    assert message in result.output and "Traceback" not in result.output


def test_html_into_a_missing_directory_is_a_usage_error(tmp_path):
    run = analysed_run(tmp_path)
    result = report(run, "--html", tmp_path / "nope" / "x.html")
    assert result.exit_code == ExitStatus.USAGE and "does not exist" in result.output


def test_not_a_directory(tmp_path):
    result = report(tmp_path / "missing")
    assert result.exit_code == ExitStatus.USAGE and "is not a directory" in result.output
