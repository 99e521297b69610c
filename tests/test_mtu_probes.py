"""The MTU probe rounds, driven against a path simulated in plain Python: each
direction has a limit, sizes above it are refused the way a kernel refuses them."""

from __future__ import annotations

from ipaddress import IPv4Address

from vxcap.core.errors import VxcapError
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
