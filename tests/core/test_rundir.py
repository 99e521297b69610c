"""The run directory's names (vxcap.core.rundir) and its reading and writing (vxcap.adapters.rundir)."""

import stat

import pytest

from vxcap.adapters.rundir import artifacts, load_report, make_run_dir, read_optional, save_node_tables, write_json
from vxcap.core import rundir
from vxcap.core.errors import InputError


def test_flow_pcapng_names_stay_one_path_component():
    assert rundir.flow_pcapng_name("k01-worker", "k01-worker3") == "evidence/k01-worker-k01-worker3.pcapng"
    name = rundir.flow_pcapng_name("../../etc", "a/b c")
    assert name.startswith("evidence/") and name.count("/") == 1 and ".." not in name


def test_the_node_tables_sit_beside_the_pcap_they_explain():
    assert rundir.pcap_name("k01-worker", "eth1") == "k01-worker-eth1.pcap"
    assert [rundir.node_file("k01-worker", "eth1", t) for t in rundir.NODE_TABLES] == [
        "k01-worker-eth1.link.json", "k01-worker-eth1.route.json",
        "k01-worker-eth1.neigh.json", "k01-worker-eth1.fdb.json",
    ]


def test_a_run_directory_and_its_files_are_private(tmp_path):
    run_dir = make_run_dir(tmp_path / "captures", "r1")
    save_node_tables(run_dir, "n1", "eth1", {rundir.ROUTES: "[]"})
    write_json(run_dir / rundir.REPORT_JSON, {"flows": []})
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    for file in run_dir.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert read_optional(run_dir / "n1-eth1.route.json") == "[]"
    assert read_optional(run_dir / "n1-eth1.fdb.json") is None
    assert artifacts(run_dir) == [rundir.REPORT_JSON]


def test_a_report_that_is_not_one_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_report(tmp_path)
    (tmp_path / rundir.REPORT_JSON).write_text("[1]")
    with pytest.raises(InputError, match="not a vxcap report"):
        load_report(tmp_path)
