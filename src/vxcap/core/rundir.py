"""The run directory's layout: every name a run leaves behind, in one place.

    captures/<run-id>/                      0700: pcaps hold other people's traffic
      <node>-<iface>.pcap                   one capture per node and interface
      <node>-<iface>.link.json              the node tables: `ip -d -j link`,
      <node>-<iface>.route.json               routes, neighbours and the VXLAN FDB,
      <node>-<iface>.neigh.json               saved beside the pcap they explain
      <node>-<iface>.fdb.json
      <node>-<iface>.pod-link.json          the test pod's `ip -d -j link` (its eth0 MTU)
      mtu-probes.json                       what the DF ping ladder and the TCP exchange said
      manifest.json                         what was tested: enough for `vxcap analyze`
      report.json, junit.xml, report.html   the verdicts, for machines, CI and people
      evidence/<src>-<dst>.pcapng           the flow pcapng: one direction from every node
      evidence/all-nodes.pcapng             every capture merged in time order

Every file is 0600. Names only: reading and writing them is `vxcap.adapters.rundir`'s.
"""

from __future__ import annotations

import re

DIR_MODE = 0o700
FILE_MODE = 0o600

MANIFEST = "manifest.json"
REPORT_JSON = "report.json"
JUNIT_XML = "junit.xml"
REPORT_HTML = "report.html"
# What the verdict line names, in this order, when present.
REPORTS = (REPORT_JSON, JUNIT_XML, REPORT_HTML)
MTU_PROBES = "mtu-probes.json"
PCAP_SUFFIX = ".pcap"

# The node tables, by the suffix each is saved under beside its node's pcap.
NODE_LINKS = "link.json"
ROUTES = "route.json"
NEIGHBOURS = "neigh.json"
FDB = "fdb.json"
NODE_TABLES = (NODE_LINKS, ROUTES, NEIGHBOURS, FDB)
# The test pod's links, saved with the node tables (the pod's eth0 MTU limits every path through it).
POD_LINKS = "pod-link.json"

# The flow pcapng files Wireshark opens: one per direction and one of everything.
FLOW_PCAPNG_DIR = "evidence"
ALL_NODES_PCAPNG = f"{FLOW_PCAPNG_DIR}/all-nodes.pcapng"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")


def pcap_name(node: str, iface: str) -> str:
    return f"{node}-{iface}{PCAP_SUFFIX}"


def node_file(node: str, iface: str, suffix: str) -> str:
    """A node table (or the pod's links) saved beside the node's pcap: `<node>-<iface>.<suffix>`."""
    return f"{node}-{iface}.{suffix}"


def _safe(name: str) -> str:
    # Node names come from a manifest a person may have written: keep them one path component.
    cleaned = _DOTS.sub("_", _UNSAFE.sub("_", name)).strip(".")
    return cleaned or "_"


def flow_pcapng_name(src_node: str, dst_node: str, family: str = "IPv4") -> str:
    """The run-relative pcapng holding one direction's frames from every node (an IPv6 direction
    of a dual-stack run has its own, `-ipv6`)."""
    suffix = "-ipv6" if family == "IPv6" else ""
    return f"{FLOW_PCAPNG_DIR}/{_safe(src_node)}-{_safe(dst_node)}{suffix}.pcapng"
