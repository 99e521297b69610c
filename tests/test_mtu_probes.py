"""The MTU probe rounds, driven against a path simulated in plain Python: each
direction has a limit, sizes above it are refused the way a kernel refuses them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from vxcap.core.errors import InputError, VxcapError
from vxcap.core.model import Pod
from vxcap.core.mtu import ladder_sizes
from vxcap.core.ping import PingResult
from vxcap.stages.mtu_probes import MAX_PROBES, run_mtu_probes
from vxcap.targets import MtuProbing
from vxcap.targets.cluster import ClusterTarget
from vxcap.targets.lab import LabTarget

PODS = {name: Pod(f"probe-{name}", name, IPv4Address(f"192.168.{i}.65")) for i, name in enumerate("abc", start=1)}


class SimulatedPaths:
    """Payload limits per (src, dst); one source can be made to fail every DF probe."""

    def __init__(self, limits: dict[tuple[str, str], int], broken_source: str | None = None) -> None:
        self.limits = limits
        self.broken_source = broken_source
        self.calls: list[tuple] = []  # ("tcp", src, dst) or ("df", src, dst, size), in the order made

    def _dst(self, ip: IPv4Address) -> str:
        return next(name for name, pod in PODS.items() if pod.ip == ip)

    def tcp_exchange(self, src_node, dst_node, dst_ip, port):
        self.calls.append(("tcp", src_node, dst_node))
        return True, "connected"

    def df_ping_all(self, probes, wait):
        outcomes = []
        for src, dst_ip, size in probes:
            dst = self._dst(dst_ip)
            self.calls.append(("df", src, dst, size))
            if src == self.broken_source:
                outcomes.append(VxcapError(f"no pod on {src}"))
                continue
            fits = size <= self.limits[(src, dst)]
            ping = PingResult(1, int(fits), int(not fits), "", refused_too_big=not fits,
                              local_mtu=None if fits else self.limits[(src, dst)] + 28)
            outcomes.append((ping, ping.message))
        return outcomes


def sizes_sent(paths, src, dst):
    return [call[3] for call in paths.calls if call[0] == "df" and call[1:3] == (src, dst)]


def test_every_tcp_exchange_comes_before_any_df_echo():
    paths = SimulatedPaths({("a", "b"): 1422, ("b", "a"): 1422, ("a", "c"): 1422, ("c", "a"): 1422})
    run_mtu_probes(paths, [("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")], PODS)
    kinds = [call[0] for call in paths.calls]
    assert kinds[:4] == ["tcp"] * 4 and set(kinds[4:]) == {"df"}


def test_each_direction_sends_the_ladder_in_order_then_pins_its_own_limit():
    limits = {("a", "b"): 1422, ("b", "a"): 1000, ("a", "c"): 1372}
    paths = SimulatedPaths(limits)
    record = run_mtu_probes(paths, list(limits), PODS, pod_mtu=1450)
    ladder = ladder_sizes(1450)
    for (src, dst), limit in limits.items():
        sent = sizes_sent(paths, src, dst)
        assert sent[: len(ladder)] == ladder
        assert limit in sent and limit + 1 in sent  # the limit is pinned exactly
        assert len(set(sent)) == len(sent) <= MAX_PROBES
    by_direction = {(r["src_node"], r["dst_node"]): r for r in record["directions"]}
    entry = next(e for e in by_direction[("b", "a")]["ladder"] if e["size"] == 1001)
    assert (entry["received"], entry["refused_too_big"], entry["local_mtu"]) == (0, True, 1028)


def test_a_direction_nothing_crosses_stops_after_the_ladder():
    paths = SimulatedPaths({("a", "b"): -1, ("b", "a"): 1422})
    run_mtu_probes(paths, [("a", "b"), ("b", "a")], PODS, pod_mtu=1450)
    assert sizes_sent(paths, "a", "b") == ladder_sizes(1450)


def test_a_source_that_cannot_send_is_recorded_and_the_others_go_on():
    paths = SimulatedPaths({("a", "b"): 1422, ("b", "a"): 1422}, broken_source="a")
    record = run_mtu_probes(paths, [("a", "b"), ("b", "a")], PODS, pod_mtu=1450)
    by_direction = {(r["src_node"], r["dst_node"]): r for r in record["directions"]}
    assert by_direction[("a", "b")]["error"] == "DF probe from a: no pod on a"
    assert len(sizes_sent(paths, "a", "b")) == 1
    assert 1423 in sizes_sent(paths, "b", "a") and "error" not in by_direction[("b", "a")]


def test_every_target_can_probe_mtus():
    # MtuProbing is part of the Target protocol: no target's run goes without MTU probes.
    assert issubclass(LabTarget, MtuProbing) and issubclass(ClusterTarget, MtuProbing)
    assert not issubclass(object, MtuProbing)


class LossyPaths(SimulatedPaths):
    """The first echo of each listed size is lost on the way (no reply, no ICMP): plain loss."""

    def __init__(self, limits, lose_once: set[int]) -> None:
        super().__init__(limits)
        self.lose_once = set(lose_once)

    def df_ping_all(self, probes, wait):
        outcomes = super().df_ping_all(probes, wait)
        for i, (src, dst_ip, size) in enumerate(probes):
            if size in self.lose_once and not isinstance(outcomes[i], VxcapError) and outcomes[i][0].received:
                self.lose_once.discard(size)
                outcomes[i] = (PingResult(1, 0, 0, "1 packets transmitted, 0 received"), "")
        return outcomes


def test_a_probe_lost_once_is_sent_again_before_it_counts():
    paths = LossyPaths({("a", "b"): 1422}, lose_once={1372})
    record = run_mtu_probes(paths, [("a", "b")], PODS, pod_mtu=1450)
    sent = sizes_sent(paths, "a", "b")
    first = sent.index(1372)
    assert sent.count(1372) == 2 and sent[first + 1] == 1372  # again in the very next round
    entries = [e for e in record["directions"][0]["ladder"] if e["size"] == 1372]
    assert [e["received"] for e in entries] == [0, 1]


def test_a_probe_refused_or_answered_by_fragmentation_needed_is_not_sent_again():
    paths = SimulatedPaths({("a", "b"): 1422})
    run_mtu_probes(paths, [("a", "b")], PODS, pod_mtu=1450)
    sent = sizes_sent(paths, "a", "b")
    assert len(set(sent)) == len(sent)  # 1423 and above were refused: each sent once


# --- IPv6 -------------------------------------------------------------------------------------

PODS6 = {name: IPv6Address(f"fd19:2168::{i}:41") for i, name in enumerate("abc", start=1)}


class DualPaths(SimulatedPaths):
    """Limits per (src, dst, family); a refusal names the MTU the way the kernel does (payload + 28 or + 48)."""

    def _dst(self, ip):
        table = PODS6 if ip.version == 6 else {n: p.ip for n, p in PODS.items()}
        return next(name for name, address in table.items() if address == ip)

    def tcp_exchange(self, src_node, dst_node, dst_ip, port):
        self.calls.append(("tcp", src_node, dst_node, dst_ip.version, port))
        return True, f"connected over IPv{dst_ip.version}"

    def df_ping_all(self, probes, wait):
        outcomes = []
        for src, dst_ip, size in probes:
            dst = self._dst(dst_ip)
            self.calls.append(("df", src, dst, size, dst_ip.version))
            limit = self.limits[(src, dst, dst_ip.version)]
            fits = size <= limit
            headers = 48 if dst_ip.version == 6 else 28
            ping = PingResult(1, int(fits), int(not fits), "", refused_too_big=not fits,
                              local_mtu=None if fits else limit + headers)
            outcomes.append((ping, ping.message))
        return outcomes


def sizes_sent6(paths, src, dst, family):
    return [c[3] for c in paths.calls if c[0] == "df" and c[1:3] == (src, dst) and c[4] == family]


def test_an_ipv6_direction_sends_the_ipv6_ladder_and_pins_the_icmpv6_limit():
    paths = DualPaths({("a", "b", 6): 1382})  # pod MTU 1430: 1430 - 40 - 8
    record = run_mtu_probes(paths, [("a", "b")], PODS, pod_mtu=1430, families=(6,), ipv6=PODS6)
    sent = sizes_sent6(paths, "a", "b", 6)
    assert sent[: len(ladder_sizes(1430, 6))] == ladder_sizes(1430, 6) == [56, 1332, 1352, 1382, 1383, 1452]
    assert 1382 in sent and 1383 in sent and not sizes_sent6(paths, "a", "b", 4)
    [direction] = record["directions"]
    assert (direction["family"], direction["dst_ip"]) == (6, str(PODS6["b"]))
    assert direction["tcp"] == {"connected": True, "detail": "connected over IPv6"}
    assert record["ladders"] == {"6": ladder_sizes(1430, 6)} and record["version"] == 3
    refused = next(e for e in direction["ladder"] if e["size"] == 1383)
    assert (refused["received"], refused["refused_too_big"], refused["local_mtu"]) == (0, True, 1430)


def test_a_dual_stack_run_probes_both_families_of_each_direction_in_the_same_rounds():
    limits = {("a", "b", 4): 1402, ("a", "b", 6): 1382, ("b", "a", 4): 1402, ("b", "a", 6): 1000}
    paths = DualPaths(limits)
    record = run_mtu_probes(paths, [("a", "b"), ("b", "a")], PODS, pod_mtu=1430, families=(4, 6), ipv6=PODS6)
    tcp = [c for c in paths.calls if c[0] == "tcp"]
    assert [c[0] for c in paths.calls[: len(tcp)]] == ["tcp"] * 4  # every exchange, both families, before any echo
    assert {(c[1], c[2], c[3]) for c in tcp} == {("a", "b", 4), ("b", "a", 4), ("a", "b", 6), ("b", "a", 6)}
    assert len({c[4] for c in tcp}) == 4  # one port each
    # The first round holds the first size of all four (direction, family) probes.
    assert [c[4] for c in paths.calls[4:8]] == [4, 4, 6, 6]
    for (src, dst, family), limit in limits.items():
        sent = sizes_sent6(paths, src, dst, family)
        assert sent[: len(ladder_sizes(1430, family))] == ladder_sizes(1430, family)
        assert limit in sent and limit + 1 in sent
    assert sorted((d["src_node"], d["dst_node"], d["family"]) for d in record["directions"]) == sorted(limits)
    assert record["ladder"] == ladder_sizes(1430, 4)


def test_ipv6_addresses_come_from_the_pod_when_not_given():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class DualPod:  # the shape of a dual-stack Pod: its IPv6 address beside the IPv4 one
        name: str
        node: str
        ip: object
        ip6: object

    pods = {n: DualPod(p.name, n, p.ip, PODS6[n]) for n, p in PODS.items()}
    paths = DualPaths({("a", "b", 6): 1382})
    record = run_mtu_probes(paths, [("a", "b")], pods, pod_mtu=1430, families=(6,))
    assert record["directions"][0]["dst_ip"] == str(PODS6["b"])


@pytest.mark.parametrize("families, ipv6", [((), PODS6), ((4, 4), PODS6), ((5,), PODS6), ((6,), None),
                                            ((6,), {n: PODS[n].ip for n in PODS})])
def test_families_and_ipv6_addresses_that_cannot_be_probed_are_input_errors(families, ipv6):
    with pytest.raises(InputError):
        run_mtu_probes(DualPaths({}), [("a", "b")], PODS, families=families, ipv6=ipv6)
