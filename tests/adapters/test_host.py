"""Where the host says whether its kernel has VXLAN: /sys/module, modules.builtin, modules.dep."""

from vxcap.adapters.host import vxlan_support


def test_vxlan_loaded_builtin_loadable_or_absent(tmp_path):
    modules = tmp_path / "lib/modules/6.1.0"
    modules.mkdir(parents=True)
    assert vxlan_support("6.1.0", tmp_path) is None
    (modules / "modules.dep").write_text("kernel/drivers/net/vxlan/vxlan.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\n")
    assert vxlan_support("6.1.0", tmp_path) == "module"
    (modules / "modules.builtin").write_text("kernel/drivers/net/vxlan/vxlan.ko\n")
    assert vxlan_support("6.1.0", tmp_path) == "builtin"
    (tmp_path / "sys/module/vxlan").mkdir(parents=True)
    assert vxlan_support("6.1.0", tmp_path) == "loaded"


def test_a_module_whose_name_only_contains_vxlan_does_not_count(tmp_path):
    modules = tmp_path / "lib/modules/6.1.0"
    modules.mkdir(parents=True)
    (modules / "modules.dep").write_text("kernel/drivers/net/ethernet/mellanox/mlx5_vxlan_helper.ko:\n")
    assert vxlan_support("6.1.0", tmp_path) is None
