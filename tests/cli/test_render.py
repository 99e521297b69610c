"""What the terminal shows of a report: plain data in, lines out."""

from vxcap.cli.render import MTU_LINES_LIMIT, mtu_section


def flow(i, findings=()):
    return {
        "src_node": f"node{i}", "dst_node": f"node{i + 1}", "verdict": "pass", "reasons": [],
        "mtu": {
            "wire": "plain", "overhead": {"bytes": 0}, "max_icmp_payload": 1422, "tcp_mss": 1410,
            "mtus": {"src": {"pod_mtu": 1450, "underlay_ifname": "eth1", "underlay_mtu": 1500}},
            "measured": {"largest_df_payload": 1422, "largest_df_payload_exact": True, "tcp_mss_seen": [1410]},
            "findings": list(findings),
        },
    }


COST = {"level": "info", "code": "plain-path-cost", "message": "50 bytes of every full-size packet unused"}
HEADROOM = {"level": "warn", "code": "headroom", "message": "eth1 allows pod MTU 8950"}
TOO_BIG = {"level": "fail", "code": "pod-mtu-too-big", "message": "eth0 MTU 1500 on node3"}


def test_a_few_directions_each_get_their_line_and_every_finding():
    lines = mtu_section({"flows": [flow(1, [COST]), flow(2, [HEADROOM])]})
    assert len(lines) == 1 + 2 + 2
    assert lines[1].startswith("node1 → node2 plain: pod 1450 / eth1 1500 · overhead 0")
    assert "eth1 allows pod MTU 8950" in lines[3]
    assert "50 bytes of every full-size packet unused" in lines[4]


def cost(i):
    return dict(COST, message=f"node{i} -> node{i + 1} runs plain at pod MTU 1450 though the underlay allows 1500: "
                              "50 bytes of every full-size packet unused")


def test_the_plain_path_cost_is_said_once_per_run_not_once_per_direction():
    lines = mtu_section({"flows": [flow(1, [cost(1)]), flow(2, [cost(2)]), flow(3, [cost(3), HEADROOM])]})
    said = [line for line in lines if "unused" in line]
    assert len(said) == 1 and lines[-1] == said[0]
    assert "all 3 plain directions run at pod MTU 1450 though" in said[0] and "node1" not in said[0]
    two = mtu_section({"flows": [flow(1, [cost(1)]), flow(2, [cost(2)])]})
    assert "both plain directions run at pod MTU 1450" in two[-1]
    assert sum("eth1 allows pod MTU 8950" in line for line in lines) == 1


def test_an_all_pairs_run_names_only_what_warns_or_fails_and_counts_the_rest():
    flows = [flow(i, [COST]) for i in range(40)]
    flows[7]["mtu"]["findings"].append(HEADROOM)
    flows[30]["mtu"]["findings"].append(TOO_BIG)
    lines = mtu_section({"flows": flows})
    assert len(flows) > MTU_LINES_LIMIT
    assert [line.split(" ")[0] for line in lines[1:] if not line.startswith("  ")] == ["node7", "node30", "38"]
    assert not any("unused" in line for line in lines)  # info notes stay in the report
    assert any("pod MTU 8950" in line for line in lines) and any("eth0 MTU 1500 on node3" in line for line in lines)
    assert lines[-1] == "38 more directions with nothing to warn of: their MTU lines are in report.json and report.html"


def test_an_all_pairs_run_with_nothing_to_warn_of_says_so_in_one_line():
    lines = mtu_section({"flows": [flow(i, [COST]) for i in range(20)]})
    assert lines[1:] == ["all 20 directions with nothing to warn of: their MTU lines are in report.json and report.html"]
