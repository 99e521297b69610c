"""What the doctor's answers mean: plain data in, a check with its fix out."""

from vxcap.core.doctor import (
    CAP_NET_ADMIN,
    CAP_NET_RAW,
    CAP_SYS_ADMIN,
    NEEDED,
    Check,
    Level,
    Permission,
    can_start,
    effective_capabilities,
    image_on_nodes,
    kernel_vxlan,
    permission_check,
    privileges,
    rbac_summary,
    tool,
)

ALL_LAB_CAPS = 1 << CAP_NET_ADMIN | 1 << CAP_NET_RAW | 1 << CAP_SYS_ADMIN


def test_capabilities_are_read_from_proc_status():
    text = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n"
    assert effective_capabilities(text) == 0x1FFFFFFFFFF
    assert effective_capabilities("Name: x\n") is None


def test_root_or_the_three_capabilities_and_the_missing_ones_are_named():
    assert privileges(0, 0x1FFFFFFFFFF).level is Level.OK
    assert privileges(1000, ALL_LAB_CAPS).level is Level.OK
    check = privileges(1000, 1 << CAP_NET_RAW)
    assert check.level is Level.FAIL and "CAP_NET_ADMIN, CAP_SYS_ADMIN" in check.detail and "root" in check.fix
    assert privileges(0, 0).level is Level.FAIL  # root in a container stripped of them cannot build the lab


def test_tools_and_kernel():
    assert tool("tcpdump", "/usr/bin/tcpdump", "tcpdump").level is Level.OK
    missing = tool("ip", None, "iproute2")
    assert missing.level is Level.FAIL and missing.fix.startswith("apt-get install iproute2")
    for state in ("loaded", "builtin", "module"):
        assert kernel_vxlan(state, "6.1.0").level is Level.OK
    assert kernel_vxlan(None, "6.1.0").level is Level.FAIL and "6.1.0" in kernel_vxlan(None, "6.1.0").fix


def test_a_permission_passes_in_any_of_its_groups_and_a_denial_says_how_to_grant_it():
    calico = Permission("list", "ippools", ("crd.projectcalico.org", "projectcalico.org"))
    granted = permission_check(calico, "vxcap", {"crd.projectcalico.org": (False, ""), "projectcalico.org": (True, "")})
    assert granted.level is Level.OK
    exec_ = Permission("create", "pods", subresource="exec", namespaced=True)
    denied = permission_check(exec_, "probe", {"": (False, "no rule")})
    assert denied.level is Level.FAIL and denied.name == "may create pods/exec in namespace probe"
    assert "no rule" in denied.detail and "deploy/rbac.yaml" in denied.fix
    assert {p.label("vxcap") for p in NEEDED} >= {"list nodes", "list events in namespace vxcap",
                                                  "list ippools (crd.projectcalico.org or projectcalico.org)"}


def node(name, *images):
    return {"metadata": {"name": name}, "status": {"images": [{"names": list(images)}]}}


def test_the_capture_image_is_found_by_its_registry_qualified_name():
    image = "vxcap/netshoot-lite:bookworm-v2"
    nodes = [node("a", f"docker.io/{image}", "docker.io/vxcap/netshoot-lite@sha256:00"), node("b", f"docker.io/{image}")]
    assert image_on_nodes(nodes, image).level is Level.OK
    partly = image_on_nodes(nodes + [node("c", "docker.io/library/busybox:1")], image)
    assert partly.level is Level.WARN and "not reported on c" in partly.detail and "kind load" in partly.fix
    assert image_on_nodes([node("d", "docker.io/other/vxcap/netshoot-lite:bookworm-v2x")], image).level is Level.WARN


def test_rbac_is_one_line_when_all_is_granted_else_one_per_denial():
    ok = [Check(f"may {i}", Level.OK, "granted") for i in range(3)]
    assert [c.detail for c in rbac_summary(ok)] == ["all 3 permissions granted"]
    no = Check("may x", Level.FAIL, "denied")
    assert rbac_summary(ok + [no]) == [no]


def test_a_run_can_start_unless_something_failed():
    assert can_start([Check("a", Level.OK, ""), Check("b", Level.WARN, ""), Check("c", Level.SKIP, "")])
    assert not can_start([Check("a", Level.OK, ""), Check("b", Level.FAIL, "")])
