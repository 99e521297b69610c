"""report.html: built from a real analysed run, checked as markup and in a real
headless Chromium (skipped when chromium is not installed)."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests import run_support
from tests.run_support import W, W2, W3, pings, plain, vx
from vxcap.adapters.rundir import load_manifest
from vxcap.pipeline import analyze
from vxcap.report.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome") or shutil.which("chromium-browser")
RUN_ID = "20250101-000000-abcd"
# Screenshots a person can look at after the run (CI can publish the directory).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def write_run(tmp_path, frames, port=4789):
    return run_support.write_run(tmp_path, frames, port=port, run_id=RUN_ID)


def one_failure():
    """worker -> worker3 on the wrong VNI; everything else as it should be."""
    cross = vx(W, W3, vni=4097) + vx(W3, W, reply=True) + vx(W3, W) + vx(W, W3, vni=4097, reply=True)
    same = pings(plain, W, W2) + pings(plain, W2, W)
    return {W: cross + same, W3: cross, W2: same}


def page_for(run, with_evidence=True, **kwargs):
    report = analyze(run).report  # analyze writes the evidence files and records them in the report
    manifest = load_manifest(run)
    if not with_evidence:
        shutil.rmtree(run / "evidence")
        report.pop("evidence")
    return report, render_html(report, manifest, run, **kwargs)


class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.hrefs, self.text, self.ids = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids += [v for k, v in attrs if k == "id"]
        self.hrefs += [v for k, v in attrs if k in ("href", "src")]

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    collected = Collect()
    collected.feed(page)
    return collected


def test_self_contained_no_scripts_no_outside_assets(tmp_path):
    _, page = page_for(write_run(tmp_path, one_failure()))
    doc = parse(page)
    assert "script" not in doc.tags and "link" not in doc.tags and "img" not in doc.tags
    assert not any(re.match(r"^[a-z]+:", href) or href.startswith("//") for href in doc.hrefs)
    assert "@import" not in page and "url(" not in page


def test_every_file_link_resolves_inside_the_run(tmp_path):
    run = write_run(tmp_path, one_failure())
    _, page = page_for(run)
    files = [unquote(h) for h in parse(page).hrefs if not h.startswith("#")]
    assert f"evidence/{W}-{W3}.pcapng" in files and "evidence/all-nodes.pcapng" in files
    assert f"{W2}-eth1.pcap" in files and "report.json" in files
    assert all((run / f).is_file() for f in files)
    anchors = {h[1:] for h in parse(page).hrefs if h.startswith("#")}
    assert len(anchors) == 4 and all(f'id="{a}"' in page for a in anchors)


def test_links_from_a_page_written_elsewhere_point_back_into_the_run(tmp_path):
    run = write_run(tmp_path, one_failure())
    elsewhere = tmp_path / "site" / "runs"
    elsewhere.mkdir(parents=True)
    _, page = page_for(run, page_dir=elsewhere)
    files = [unquote(h) for h in parse(page).hrefs if not h.startswith("#")]
    assert files and all((elsewhere / f).resolve().is_file() for f in files)


def test_verdicts_paths_and_wireshark_lines(tmp_path):
    _, page = page_for(write_run(tmp_path, one_failure()))
    text = " ".join(" ".join(parse(page).text).split())
    assert "FAIL" in text and text.count("PASS") >= 3
    assert "VNI 4097, expected 4096" in text
    assert "3/4 directions as expected" in text
    # The encapsulated path names the VTEPs, the port and the underlay addresses; the plain one does not tunnel.
    assert "vxlan.calico" in text and "UDP 4789" in text
    assert "outer 10.10.10.11 → 10.10.20.13, UDP 4789, VNI 4096; inner 192.168.81.65 → 192.168.209.65" in text
    assert "IPv4 192.168.81.65 → 192.168.164.129, no encapsulation" in text
    assert "wireshark -r evidence/all-nodes.pcapng -Y 'ip.src==192.168.81.65 && ip.dst==192.168.209.65'" in text
    assert "tshark -r evidence/all-nodes.pcapng -Y 'ip.src==192.168.164.129 && ip.dst==192.168.81.65'" in text


def test_a_custom_port_gets_a_decode_as_in_every_line(tmp_path):
    frames = {
        W: pings(vx, W, W3, port=8472) + pings(vx, W3, W, port=8472) + pings(plain, W, W2) + pings(plain, W2, W),
        W3: pings(vx, W, W3, port=8472) + pings(vx, W3, W, port=8472),
        W2: pings(plain, W, W2) + pings(plain, W2, W),
    }
    report, page = page_for(write_run(tmp_path, frames, port=8472))
    assert report["verdict"] == "pass"
    text = " ".join(parse(page).text)
    assert text.count("-d udp.port==8472,vxlan") == 8  # wireshark and tshark, four directions


def test_without_evidence_the_lines_open_the_senders_capture(tmp_path):
    _, page = page_for(write_run(tmp_path, one_failure()), with_evidence=False)
    text = " ".join(parse(page).text)
    assert f"tshark -r {W3}-eth1.pcap -Y 'ip.src==192.168.209.65 && ip.dst==192.168.81.65'" in text
    assert "(not written)" in text


def test_everything_from_the_files_is_escaped(tmp_path):
    # Manifests refuse such node names now (vxcap.core.names), but report.json is a file
    # `vxcap report` reads back as it finds it: every string from it is hostile.
    run = write_run(tmp_path, one_failure())
    report = analyze(run).report
    report["run_id"] = 'w<b id="x">1</b>'
    report["flows"][0]["reasons"] = ["w3'\"><script>alert(1)</script>"]
    report["errors"] = ["w2&amp;"]
    page = render_html(report, load_manifest(run), run)
    doc = parse(page)
    assert "script" not in doc.tags and "x" not in doc.ids
    assert "<script>alert(1)</script>" in "".join(doc.text) and '<b id="x">1</b>' in "".join(doc.text)
    assert "w2&amp;amp;" in page


def test_mtu_figures_are_shown_when_the_report_has_them(tmp_path):
    run = write_run(tmp_path, one_failure())
    report = analyze(run).report
    manifest = load_manifest(run)
    for flow in report["flows"]:
        flow.pop("mtu")  # an older report.json, from before the MTU section
    assert "MTU" not in " ".join(parse(render_html(report, manifest, run)).text).replace("vxlan MTU 1450", "")
    report["flows"][0]["mtu"] = {
        "wire": "vxlan", "overhead": {"bytes": 50}, "underlay_mtu": 1500, "underlay_mtu_assumed": False,
        "max_inner_packet": 1450, "path_limit": 1450, "max_icmp_payload": 1422, "tcp_mss": 1410, "max_frame": 1514,
        "mtus": {"src": {"node": W, "pod_ifname": "eth0", "pod_mtu": 1450, "vxlan_ifname": "vxlan.calico",
                         "vxlan_mtu": 1450, "underlay_ifname": "eth1", "underlay_mtu": 1500}},
        "measured": {"largest_df_payload": 1422, "largest_df_payload_exact": True, "tcp_mss_seen": [1410, 1460]},
        "findings": [{"level": "warn", "code": "x", "message": "pod MTU <1450> leaves room"}],
    }
    text = " ".join(" ".join(parse(render_html(report, manifest, run)).text).split())
    for figure in ("encapsulation overhead 50 B", "TCP MSS 1410", "largest frame on the wire 1514",
                   "largest DF payload measured 1422", "eth0 1450, vxlan.calico 1450, eth1 1500",
                   "WARN pod MTU <1450> leaves room", "TCP MSS seen in SYNs 1410, 1460"):
        assert figure in text


def test_a_run_that_judged_nothing_says_why(tmp_path):
    run = write_run(tmp_path, one_failure())
    report = {"version": 1, "verdict": "fail", "run_id": None, "summary": {"flows": 0, "passed": 0, "failed": 0},
              "errors": ["provision failed: pod never became Ready"], "flows": []}
    text = " ".join(parse(render_html(report, load_manifest(run), run)).text)
    assert "FAIL" in text and "provision failed: pod never became Ready" in text and "No direction was judged" in text


def chromium(args, tmp_path):
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_renders_the_verdicts(tmp_path):
    run = write_run(tmp_path, one_failure())
    _, page = page_for(run)
    (run / "report.html").write_text(page)
    url = (run / "report.html").as_uri()
    dom = chromium(["--dump-dom", url], tmp_path).stdout
    rows = re.findall(r"<tr class=\"(failed|)\">.*?</tr>", dom, flags=re.S)
    assert sorted(rows) == ["", "", "", "failed"]
    badges = re.findall(r'<span class="badge (pass|fail)(?: big)?">(PASS|FAIL)</span>', dom)
    assert ("fail", "FAIL") in badges and badges.count(("pass", "PASS")) >= 3
    shot = ARTIFACTS / "report-one-failure.png"
    result = chromium([f"--screenshot={shot}", url], tmp_path)
    assert shot.is_file() and shot.stat().st_size > 10_000, result.stderr[-500:]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_draws_each_packet_as_its_layers_and_each_hop_of_the_probes(tmp_path):
    run = write_run(tmp_path, one_failure())
    report = analyze(run).report
    # As the run reports them once delivery is counted: worker3's reply to worker lost on the way back.
    for flow in report["flows"]:
        flow["delivery"] = {"sent": 3, "left_sender": 3, "arrived_receiver": 3, "answered": 3, "replies_back": 3}
        flow["mtu"].update(max_icmp_payload=1422, underlay_mtu=1500)
    report["flows"][0]["delivery"]["replies_back"] = 2
    (run / "report.html").write_text(render_html(report, load_manifest(run), run))
    url = (run / "report.html").as_uri()
    dom = chromium(["--dump-dom", url], tmp_path).stdout
    assert dom.count('aria-label="packet layers"') == 4
    vxlan_layers = re.findall(r'<div class="layer (?:outer|inner|payload)"[^>]*><b>([^<]+)</b><span>([^<]+)</span>', dom)
    assert vxlan_layers[:8] == [("outer Ethernet", "14 B"), ("outer IPv4", "20 B"), ("UDP", "8 B"), ("VXLAN", "8 B"),
                                ("inner Ethernet", "14 B"), ("IPv4", "20 B"), ("ICMP", "8 B"), ("payload", "1422 B")]
    assert "IP packet 1500 B of underlay MTU 1500" in dom and "overhead 50 B" in dom
    assert dom.count('class="dot lost"') == 1  # the one reply that did not come back
    assert "2/3" in dom
    assert "<th>Echoes</th>" in dom
    shot = ARTIFACTS / "report-pictures.png"
    result = chromium([f"--screenshot={shot}", "--window-size=1400,2600", url], tmp_path)
    assert shot.is_file() and shot.stat().st_size > 10_000, result.stderr[-500:]


def test_analyze_puts_an_mtu_section_on_every_flow_and_the_page_shows_it(tmp_path):
    # These captures come with no ip-link evidence and no probes: the MTUs are unknown and said so.
    run = write_run(tmp_path, one_failure())
    report = analyze(run).report
    assert all(isinstance(flow["mtu"], dict) for flow in report["flows"])
    first = report["flows"][0]["mtu"]
    assert first["underlay_mtu_assumed"] is True and first["measured"]["probes"] == []
    assert {f["code"] for f in first["findings"]} >= {"mtu-unknown"}
    text = " ".join(" ".join(parse(render_html(report, load_manifest(run), run)).text).split())
    assert "underlay MTU 1500 (assumed: not read from the nodes)" in text and "unknown (no ip link evidence)" in text


def test_past_the_paths_limit_the_page_draws_the_failing_paths_and_keeps_every_verdict(tmp_path, monkeypatch):
    # A coverage run has a thousand directions: their rows stay, only the failing paths are drawn.
    import vxcap.report.html as html

    monkeypatch.setattr(html, "PATHS_LIMIT", 2)
    run = write_run(tmp_path, one_failure())
    report, page = page_for(run)
    doc = parse(page)
    text = " ".join(" ".join(doc.text).split())
    sections = re.findall(r'<section class="direction" id="([^"]+)"', page)
    failing = [f for f in report["flows"] if f["verdict"] != "pass"]
    assert len(failing) == 1 and len(sections) == 1
    assert f"{failing[0]['src_node']} → {failing[0]['dst_node']}" in text and "VNI 4097, expected 4096" in text
    # Every direction keeps its row and verdict in the table.
    rows = re.findall(r'<tr class="[^"]*">', page.split('id="verdicts"')[1].split("</table>")[0])
    assert len(rows) == len(report["flows"]) == 4 and text.count("PASS") >= 3
    assert "3 passing directions of 4 are in the table above only" in text
    assert "report.json" in [unquote(h) for h in doc.hrefs]
    anchors = {h[1:] for h in doc.hrefs if h.startswith("#")}
    assert anchors == set(sections)
