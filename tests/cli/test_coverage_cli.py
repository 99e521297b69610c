"""`--coverage` at the command line, and what the terminal shows of a coverage run and its blame."""

import json
from pathlib import Path

from click.testing import CliRunner

from vxcap.cli.main import cli
from vxcap.cli.render import TABLE_ROWS_LIMIT, coverage_table, summary, table_flows, verdict_table
from vxcap.exit_status import ExitStatus


def vxcap(*args):
    return CliRunner().invoke(cli, list(args))


def plan_of(*extra):
    result = vxcap("topology", "--lab", "--nodes", "12", "--subnets", "3", "--coverage", "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["coverage"]


def test_topology_shows_the_plan_with_a_reason_per_pair_and_no_n_squared_path_list():
    result = vxcap("topology", "--lab", "--nodes", "12", "--subnets", "3", "--coverage", "--json")
    data = json.loads(result.stdout)
    assert data["paths"] == [] and len(data["nodes"]) == 12
    plan = data["coverage"]
    assert plan["kind"] == "coverage" and plan["seed"] == 0 and plan["peers"] == 2
    assert plan["directions"] == 2 * plan["pairs"] == 2 * len(plan["plan"]) and plan["all_pairs_directions"] == 132
    assert all(entry["why"] for entry in plan["plan"])
    assert [s["nodes"] for s in plan["subnets"]] == [4, 4, 4]


def test_the_plan_is_the_same_for_the_same_seed_and_another_for_another():
    assert plan_of("--seed", "4") == plan_of("--seed", "4")
    assert plan_of("--seed", "4")["plan"] != plan_of("--seed", "5")["plan"]
    assert plan_of("--peers", "1")["pairs"] < plan_of()["pairs"]


def test_the_table_lists_each_pair_and_why():
    result = vxcap("topology", "--lab", "--nodes", "6", "--subnets", "2", "--coverage")
    assert result.exit_code == 0
    assert "coverage plan (seed 0):" in result.output and "instead of 30" in result.output
    assert "sends vxlan" in result.output and "receives plain" in result.output


def test_seed_and_peers_need_coverage_and_coverage_excludes_pairs():
    result = vxcap("topology", "--lab", "--seed", "3")
    assert result.exit_code == ExitStatus.USAGE and "--seed and --peers go with --coverage" in result.output
    result = vxcap("run", "--lab", "--coverage", "--pair", "worker,worker3")
    assert result.exit_code == ExitStatus.USAGE and "leave out --pair and --all-pairs" in result.output


def flow(i, verdict="pass"):
    return {"src_node": f"n{i}", "dst_node": f"n{i + 1}", "expected": "vxlan", "observed": "vxlan", "vni": 4096,
            "outer_src": "10.0.0.1", "outer_dst": "10.0.0.2", "udp_dport": 4789, "packets": 3, "verdict": verdict,
            "reasons": [], "wireshark_filter": f"ip.src==192.168.0.{i}"}


def test_a_large_run_tables_only_its_failing_directions():
    report = {"flows": [flow(i) for i in range(TABLE_ROWS_LIMIT + 10)]}
    report["flows"][5]["verdict"] = "fail"
    assert table_flows(report) == [report["flows"][5]]
    assert "the 1 failing of 74 directions" in str(verdict_table(report).title)
    small = {"flows": [flow(i) for i in range(3)]}
    assert table_flows(small) == small["flows"]


def test_the_summary_says_the_plan_and_the_suspect():
    report = {"verdict": "fail", "summary": {"flows": 136, "passed": 130, "failed": 6},
              "plan": {"kind": "coverage", "seed": 5, "pairs": 68, "nodes": 40},
              "blame": {"nodes": [{"node": "k01-worker17", "failed": 6}], "message": "..."}}
    line = summary(report, Path("captures/x"))
    assert "130/136 directions as expected (coverage plan, seed 5: 68 pairs over 40 nodes) · suspect: k01-worker17" in line


def test_the_plan_table_numbers_its_pairs():
    plan = {"seed": 1, "pairs": 1, "directions": 2, "all_pairs_directions": 2,
            "plan": [{"a": "x", "b": "y", "why": ["x sends vxlan", "y receives vxlan"]}]}
    table = coverage_table(plan)
    assert table.row_count == 1 and "2 directions instead of 2" in str(table.title)
