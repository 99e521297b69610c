"""Names checked where they enter: Kubernetes', Docker's and the kernel's own rules."""

from __future__ import annotations

import pytest

from vxcap.core.errors import InputError
from vxcap.core.names import (
    check_container_name,
    check_iface,
    check_namespace,
    check_node_name,
    check_pod_name,
    check_relative_file,
)

GOOD_NODES = ["k01-worker", "k01-control-plane", "ip-10-0-1-5.eu-west-1.compute.internal", "a", "0", "n" * 253]
BAD_NODES = ["", "../../etc", "k01-Worker", "-worker", "worker-", "work er", "worker/1", "a..b", ".worker",
             "worker.", "w_1", "n" * 254, "k01-worker\n", "wörker"]


@pytest.mark.parametrize("name", GOOD_NODES)
def test_node_names_are_dns_1123_subdomains(name):
    assert check_node_name(name) == name


@pytest.mark.parametrize("name", BAD_NODES)
def test_other_node_names_are_refused_naming_the_field(name):
    with pytest.raises(InputError) as caught:
        check_node_name(name, "nodes[2].name")
    message = str(caught.value)
    assert message.startswith("nodes[2].name ") and "\n" not in message


@pytest.mark.parametrize("check", [check_namespace, check_pod_name])
def test_namespaces_and_pods_are_dns_1123_labels(check):
    assert check("vxcap") == "vxcap"
    assert check("vxcap-probe-20240101-120000-ab12-k01-worker") == "vxcap-probe-20240101-120000-ab12-k01-worker"
    assert check("x" * 63) == "x" * 63
    for bad in ("x" * 64, "kube.system", "Vxcap", "-vxcap", "vxcap-", "a/b", "a b"):
        with pytest.raises(InputError, match="DNS-1123 label"):
            check(bad)


def test_the_namespace_error_names_the_option():
    with pytest.raises(InputError, match=r"^--namespace 'Kube System' is not valid"):
        check_namespace("Kube System", "--namespace")


@pytest.mark.parametrize("name", ["eth1", "vxlan.calico", "a" * 15, "enp0s31f6", "br-5f1c2e", "any", "-"])
def test_interface_names_the_kernel_accepts(name):
    assert check_iface(name) == name


@pytest.mark.parametrize("name", ["a" * 16, ".", "..", "eth/1", "eth1:0", "eth 1", "eth1\t", "\neth1", "eth\x001",
                                  "eth\x7f", "ä" * 8])  # 16 bytes of UTF-8
def test_interface_names_the_kernel_refuses(name):
    with pytest.raises(InputError, match=r"^--iface .* is not valid: an interface name is 1-15 characters"):
        check_iface(name, "--iface")


@pytest.mark.parametrize("value", [None, "", 7])
def test_empty_and_non_strings_are_refused_with_what_they_were(value):
    for check in (check_node_name, check_iface, check_namespace, check_container_name, check_relative_file):
        with pytest.raises(InputError, match=f"^field must be a non-empty string, got {value!r}$"):
            check(value, "field")


@pytest.mark.parametrize("name", ["k01-worker", "clab-k01-leaf1", "Node_1.a", "/k01-worker"])
def test_container_names_as_docker_takes_them(name):
    assert check_container_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "_x", "a b", "a/b", "../x", "x" * 256])
def test_container_names_docker_refuses(name):
    with pytest.raises(InputError, match="container name"):
        check_container_name(name, "node container name")


@pytest.mark.parametrize("name", ["k01-worker-eth1.pcap", "captures/k01-worker.pcapng", "a..b.pcap", "./x.pcap"])
def test_files_inside_the_run_directory(name):
    assert check_relative_file(name, "file") == name


@pytest.mark.parametrize("name", ["/etc/shadow", "../x.pcap", "a/../../x.pcap", "a/..", "..", "x\\..\\y", "x\0y"])
def test_files_that_would_leave_the_run_directory(name):
    with pytest.raises(InputError, match="^nodes\\[0\\].captures\\[0\\].file "):
        check_relative_file(name, "nodes[0].captures[0].file")
