"""The one pipeline, top to bottom: discover, plan, provision, capture, probe, stop,
decode, judge, report.

`run` drives a Target through the first six stages and writes manifest.json;
`analyze` does the last three from a run directory alone, so a run and a later
`vxcap analyze` of the same directory can never disagree.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from vxcap.adapters.evidence import write_evidence
from vxcap.adapters.rundir import (
    load_manifest,
    make_private,
    make_run_dir,
    write_json,
    write_private,
    write_report_json,
)
from vxcap.core import rundir as names
from vxcap.core.blame import blame_flows
from vxcap.core.delivery import PointState, judge_delivery
from vxcap.core.errors import VxcapError
from vxcap.core.frames import FlowKey, FlowTally
from vxcap.core.manifest import Manifest, ProbeCount, manifest_dict, parse_manifest
from vxcap.core.model import Pair, Pod, Topology, Wire
from vxcap.core.mtu.path import fail_reasons
from vxcap.core.plan import pair_nodes, path_families, plan, resolve_pairs
from vxcap.core.verdict import CapturePoint, FlowVerdict, judge
from vxcap.report.html import render_html
from vxcap.report.json_report import coverage_dict, coverage_summary, report_dict
from vxcap.report.junit import write_junit
from vxcap.stages.capture_filters import capture_filters
from vxcap.stages.decode import (
    DecoderDisagreement,
    PendingCheck,
    ReadAhead,
    decode_point,
    judged_addresses,
    reading_for,
)
from vxcap.stages.flow_views import flow_views
from vxcap.stages.mtu_probes import run_mtu_probes
from vxcap.stages.mtu_verdicts import judge_mtu
from vxcap.stages.node_tables import NodeTables, explain_failures, underlay_macs
from vxcap.stages.packet_watch import PacketWatch
from vxcap.stages.scapy_worker import ScapyWorker
from vxcap.stages.spot_check import SpotCheck
from vxcap.stages.timer import Progress, StageTimer
from vxcap.stages.wireshark import add_wireshark_commands, cross_check_decode
from vxcap.targets import Target

STAGES = ("discover", "plan", "provision", "capture", "probe", "mtu-probe", "stop", "tables", "decode", "judge",
          "spot-check", "report", "cross-check", "evidence")

# What the current stage is waiting for, each time it changes: "captures listening 2/3",
# "packets captured: k01-worker 12 · k01-worker3 12". A live display shows it; logs may skip it.
Waiting = Callable[[str], None]


def _quiet(stage: str, detail: str) -> None:
    pass


def _not_told(what: str) -> None:
    pass


@dataclass
class RunOptions:
    pair_specs: tuple[str, ...] = ()
    all_pairs: bool = False
    out_parent: Path = Path("captures")
    run_id: str | None = None
    ping_count: int = 3
    cross_check: bool = False
    capture_filter: str = "precise"  # or "wide": everything between the nodes (vxcap.core.capture)
    coverage: bool = False  # plan with vxcap.core.coverage instead of pair_specs
    seed: int = 0
    peers: int = 2


@dataclass
class Outcome:
    run_dir: Path
    report: dict[str, Any]
    verdicts: list[FlowVerdict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    # report.json as written: `--json` prints it rather than encoding a large report twice
    report_text: str | None = None

    @property
    def passed(self) -> bool:
        return self.report["verdict"] == "pass"


def new_run_id() -> str:
    import secrets  # `run` only: analyze does not pay for it

    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _listing(names: tuple[str, ...], most: int = 8) -> str:
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"


def run(target: Target, options: RunOptions, progress: Progress = _quiet, waiting: Waiting = _not_told) -> Outcome:
    # tcpdump and every helper inherit this: nothing of the run is readable by others.
    previous_umask = os.umask(0o077)
    try:
        with fewer_collections():
            return _run(target, options, progress, waiting)
    finally:
        os.umask(previous_umask)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cycle collector, told that a run's objects live as long as the run: at its default
    (a young-generation pass every 700 allocations) it walked the flows, tallies and verdicts of a
    256-node run about 500 times, 0.35-0.4 s with every thread stopped. What was imported before is
    frozen out of its walks; the collector still runs, ten times less often."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _run(target: Target, options: RunOptions, progress: Progress, waiting: Waiting = _not_told) -> Outcome:
    timer = StageTimer(progress)
    run_id = options.run_id or new_run_id()
    errors: list[str] = []
    probes: list[dict[str, Any]] = []
    pods: dict[str, Pod] = {}
    captures: dict[str, list[tuple[str, str]]] = {}
    capture_facts: dict[tuple[str, str], dict[str, Any]] = {}
    capture_errors: dict[str, str] = {}  # node -> why it has no capture
    filters: dict[str, dict[str, str]] = {}  # node -> the filter its capture used
    interrupted = False

    with ExitStack() as cleanup:
        cleanup.callback(target.release)

        timer.stage("discover", target.description)
        topology = target.discover()

        timer.stage("plan")
        plan_info = None
        if options.coverage:
            from vxcap.core.coverage import coverage_plan

            coverage = coverage_plan(topology, options.seed, options.peers)
            pairs, plan_info = coverage.as_pairs(), coverage_dict(coverage, topology)
            progress("plan", coverage_summary(plan_info))
        else:
            pairs = resolve_pairs(topology, options.pair_specs, all_pairs=options.all_pairs)
        nodes = pair_nodes(pairs)
        run_dir = make_run_dir(options.out_parent, run_id)

        running: list[tuple[str, str, str, Any]] = []
        early_tables: NodeTables | None = None
        watch: PacketWatch | None = None
        worker: ScapyWorker | None = None
        try:
            timer.stage("provision", f"test pods on {_listing(nodes)}")
            pods = target.provision(nodes)
            settle = getattr(target, "settle", None)
            if settle is not None:  # a cluster's CNI: what only the provisioned run can tell (Cilium's identities)
                try:
                    topology = settle(topology, pods)
                except VxcapError:
                    pods = {}  # nothing is captured or judged against a half-known promise
                    raise

            timer.stage("capture", f"tcpdump on {len(nodes)} node(s)")
            files = {node: names.pcap_name(node, target.underlay_iface(node)) for node in nodes}
            filters = capture_filters(topology, nodes, pairs, pods, options.capture_filter)
            waiting(f"captures listening 0/{len(nodes)}")
            batch = getattr(target, "start_captures", None)
            handles: list[Any] = []
            if batch is not None:
                handles = batch([(node, run_dir / files[node], filters[node]["bpf"]) for node in nodes])
            for i, node in enumerate(nodes):
                if batch is None:
                    try:
                        handles.append(target.start_capture(node, run_dir / files[node], filters[node]["bpf"]))
                    except VxcapError as err:
                        handles.append(err)
                handle, iface = handles[i], target.underlay_iface(node)
                if isinstance(handle, VxcapError):  # the other nodes' captures still count
                    errors.append(f"capture on {node}/{iface} did not start: {handle}")
                    capture_errors[node] = f"capture on {node}/{iface} did not start: {handle}"
                    continue
                # A capture that is never stopped leaks a tcpdump: stop it on any way out.
                cleanup.callback(_stop_quietly, handle)
                running.append((node, iface, files[node], handle))
                waiting(f"captures listening {len(running)}/{len(nodes)}")

            watch = PacketWatch([(node, handle) for node, *_, handle in running], waiting)
            cleanup.callback(watch.stop)
            # The spot-check's scapy process, started now: its import (0.3 s of CPU, more on a loaded
            # machine) runs while the probes wait on the network, instead of at the head of the decode.
            worker = ScapyWorker()
            cleanup.callback(worker.close)
            if options.coverage and hasattr(target, "node_links"):
                # Every node's links (which the verdicts read) while the probes are out: on the 256-node lab
                # they are 512 namespaces' worth of Python, which beside the decode held it back by half a
                # second. A cluster's tables go through its API server: read after the probes, as before.
                early_tables = NodeTables(target, run_dir, nodes, deferred=True)
                cleanup.callback(early_tables.close)
            timer.stage("probe", f"{2 * len(pairs)} direction(s)")
            probes = _probe(target, topology, pairs, pods, options.ping_count, errors)

            timer.stage("mtu-probe", f"DF ping ladder and a TCP exchange, {2 * len(pairs)} direction(s)")
            directions = [d for pair in pairs for d in pair.directions()]
            # A target that knows its pods' MTU says so (a WireGuard lab's pods have wireguardMTU, not vxlanMTU).
            pod_mtu = getattr(target, "pod_mtu", None) or topology.overlay.mtu
            # Each family the pods have an address in (a cluster's pods may not say their IPv6 one).
            families = tuple(f for f in topology.overlay.families()
                             if all(pods[n].ip_of(f) is not None for n in nodes)) or (4,)
            write_json(run_dir / names.MTU_PROBES, run_mtu_probes(target, directions, pods, pod_mtu,
                                                                  families=families))
        except KeyboardInterrupt:
            interrupted = True
            errors.append(f"interrupted during {timer.current}: the verdicts cover what was captured until then")
        except Exception as err:  # noqa: BLE001 - it becomes the run's error; what was captured is still judged
            errors.append(f"{timer.current} failed: {err}")

        if watch is not None:
            watch.stop()
        timer.stage("stop", f"{len(running)} capture(s)")
        stopped = _stop_captures([handle for *_, handle in running])
        for (node, iface, file_name, _handle), (result, failure) in zip(running, stopped):
            if failure is not None:  # a dead capture: keep what it wrote, and say it is not the whole window
                errors.append(f"capture on {node}/{iface} failed: {failure}")
            path = run_dir / file_name
            if not path.exists():
                errors.append(f"capture on {node}/{iface} left no file")
                capture_errors[node] = f"capture on {node}/{iface} left no file"
                continue
            make_private(path)
            captures.setdefault(node, []).append((iface, file_name))
            capture_facts[(node, iface)] = {
                "kernel_dropped": getattr(result, "dropped", None),
                "failed": None if failure is None else str(failure),
            }
            if result is not None and getattr(result, "captured", None) == 0:
                errors.append(f"capture on {node}/{iface} recorded no packets")
        if options.coverage:
            # Read beside the probes (or now, when the run failed before them), the full tables only where a
            # failure needs them (stages.node_tables): `_analyze` waits for them before judging; the target is
            # released once they are read.
            tables = early_tables or NodeTables(target, run_dir, nodes, deferred=True)
        else:
            timer.stage("tables", f"links, routes, neighbours and FDB of {len(nodes)} node(s)")
            tables = NodeTables(target, run_dir, nodes)
            errors.extend(tables.wait())
        cleanup.callback(tables.close)

        if not pods:
            if tables.pending:
                errors.extend(tables.wait())
            report = _write_setup_failure(run_dir, run_id, errors or ["no test pods"], timer)
            return Outcome(run_dir=run_dir, report=report, timings=timer.done(), interrupted=interrupted)
        probe_counts = [
            ProbeCount(p["src_node"], p["dst_node"], p["transmitted"], p["received"], p.get("family", 4))
            for p in probes if "transmitted" in p
        ]
        manifest = manifest_dict(topology, pods, pairs, captures, run_id=run_id, capture_facts=capture_facts,
                                 capture_errors=capture_errors, probes=probe_counts,
                                 notes=tuple(getattr(target, "notes", ())), capture_filters=filters,
                                 plan=plan_info)
        write_json(run_dir / names.MANIFEST, manifest)
        outcome = _analyze(run_dir, parse_manifest(manifest), timer, errors, probes, options.cross_check, tables=tables,
                           worker=worker)
        outcome.interrupted = interrupted
        return outcome


def _stop_captures(handles: list[Any]) -> list[tuple[Any, Exception | None]]:
    """Each stop waits for tcpdump to flush and exit: stopped together, the waits overlap. Handles
    of one kind that stop many at once (tcpdump.RunningCapture.stop_many) do so from this thread;
    the others each from a thread of their own."""
    from concurrent.futures import ThreadPoolExecutor

    stopped: list[tuple[Any, Exception | None] | None] = [None] * len(handles)
    kinds: dict[type, list[int]] = {}
    for i, handle in enumerate(handles):
        kinds.setdefault(type(handle), []).append(i)
    alone = [i for kind, at in kinds.items() if not hasattr(kind, "stop_many") for i in at]
    with ThreadPoolExecutor(max_workers=max(1, len(alone) + 1)) as pool:
        singles = pool.map(_stop_capture, [handles[i] for i in alone])
        for kind, at in kinds.items():
            if hasattr(kind, "stop_many"):
                for i, outcome in zip(at, kind.stop_many([handles[i] for i in at])):
                    stopped[i] = outcome
        for i, outcome in zip(alone, singles):
            stopped[i] = outcome
    return [outcome for outcome in stopped if outcome is not None]


def _stop_capture(handle: Any) -> tuple[Any, Exception | None]:
    try:
        return handle.stop(), None
    except Exception as err:  # noqa: BLE001 - reported by the caller with the node's name
        return None, err


def _stop_quietly(handle: Any) -> None:
    try:
        handle.stop()
    except Exception:  # noqa: BLE001 - already stopped or already dead; nothing to keep
        pass


def _probe(
    target: Target, topology: Topology, pairs: tuple[Pair, ...], pods: dict[str, Pod], count: int, errors: list[str]
) -> list[dict[str, Any]]:
    # Each direction in each family it carries (a dual-stack run pings both, all at once).
    directions = [(src, dst, family) for pair in pairs for src, dst in pair.directions()
                  for family in path_families(topology, topology.node(src), topology.node(dst))
                  if pods[src].ip_of(family) is not None and pods[dst].ip_of(family) is not None]
    results = target.ping_all([(src, pods[dst].ip_of(family)) for src, dst, family in directions], count)
    entries = []
    for (src, dst, family), result in zip(directions, results):
        entry: dict[str, Any] = {"src_node": src, "dst_node": dst, "dst_ip": str(pods[dst].ip_of(family))}
        if family != 4:
            entry["family"] = family
        if isinstance(result, VxcapError):
            errors.append(f"probe {src} -> {dst}{'' if family == 4 else ' (IPv6)'} failed: {result}")
        else:
            entry.update(transmitted=result.transmitted, received=result.received)
        entries.append(entry)
    return entries


def _write_setup_failure(run_dir: Path, run_id: str, errors: list[str], timer: StageTimer) -> dict[str, Any]:
    report = report_dict([], run_id=run_id, errors=errors, extra={"timings": timer.done()})
    _write_reports(run_dir, report)
    return report


def _write_reports(run_dir: Path, report: dict[str, Any], page: str | None = None) -> str:
    """Writes report.json, junit.xml and report.html; returns report.json's text (for `--json`)."""
    text = write_report_json(run_dir / names.REPORT_JSON, report)
    write_junit(report, run_dir / names.JUNIT_XML)
    make_private(run_dir / names.JUNIT_XML)
    if page is not None:
        write_private(run_dir / names.REPORT_HTML, page)
    return text


# Evidence pcapng copies every frame of every capture: automatic for run-sized
# captures, on request (--evidence) for the million-frame ones analyze also reads.
EVIDENCE_AUTO_BYTES = 64 * 2**20
# Beyond this many directions (a coverage run: 1,056 at 256 nodes), as report.html draws only the
# failing directions' paths (report.html.PATHS_LIMIT), a run writes per-flow files for its failing
# directions only, beside all-nodes.pcapng, which holds every frame of every capture: a file per
# passing direction was 1,056 files, 1.2-2 s of writing and 0.35 s of CPU more, opened by nobody.
# `vxcap analyze --evidence DIR` writes every direction's.
EVIDENCE_FLOWS_LIMIT = 64


class _EvidenceWriter(threading.Thread):
    """write_evidence for the plan's flows, in a thread started now; `result` waits for it."""

    def __init__(self, run_dir: Path, manifest: Manifest, expectations) -> None:
        super().__init__(name="vxcap-evidence")  # not a daemon: a file is never left half written
        self.args = run_dir, manifest
        # family: a dual-stack run's IPv6 direction has its own file; a WireGuard one is filed by
        # the nodes' tunnel (the expected outer addresses), its pods being encrypted.
        self.flows = [{"src_node": e.src_node, "dst_node": e.dst_node, "src_ip": str(e.src_ip),
                       "dst_ip": str(e.dst_ip), "family": f"IPv{e.family}", "expected": e.expected.value,
                       "outer_src": str(e.outer_src), "outer_dst": str(e.outer_dst)} for e in expectations]
        self.outcome: tuple[bool, Any] | None = None
        self.start()

    def run(self) -> None:
        try:
            self.outcome = True, write_evidence(*self.args, {"flows": self.flows})
        except BaseException as err:  # noqa: BLE001 - raised again by result(), in the pipeline's thread
            self.outcome = False, err

    def result(self, report: dict[str, Any], every_flow: bool = True) -> dict[str, Any]:
        self.join()
        assert self.outcome is not None
        done, value = self.outcome
        if not done:
            raise value
        if not every_flow:
            failing = [flow for flow in report["flows"] if flow["verdict"] != "pass"]
            if failing:
                value = write_evidence(*self.args, {"flows": failing})
            value["note"] = (f"{len(report['flows'])} directions: per-flow files for the {len(failing)} failing "
                             f"one(s) only; {names.ALL_NODES_PCAPNG} holds every frame "
                             f"(`vxcap analyze --evidence {self.args[0]}` writes every direction's)")
            return value
        fields = ("src_node", "dst_node", "src_ip", "dst_ip", "family")
        unpromised = any(f.get("observed") == "wireguard" != f.get("expected") for f in report["flows"])
        if unpromised or [{k: f[k] for k in fields} for f in report["flows"]] != [{k: f[k] for k in fields} for f in self.flows]:
            # not the plan's, or WireGuard seen where another format was expected (filed by the nodes' tunnel):
            # written again
            return write_evidence(*self.args, report)
        return value


def analyze(
    run_dir: Path, progress: Progress = _quiet, cross_check: bool = False, evidence: bool | None = None,
    worker: ScapyWorker | None = None,
) -> Outcome:
    """Decode, judge and report a run directory: what `vxcap analyze` does. `worker`: the
    spot-check's scapy process, if the caller started it earlier (it is closed here)."""
    worker = worker or ScapyWorker()  # first: scapy's import runs beside the manifest's reading and the fast decode
    try:
        manifest = load_manifest(run_dir)
    except BaseException:
        worker.close()
        raise
    timer = StageTimer(progress)
    with fewer_collections():
        return _analyze(run_dir, manifest, timer, [], None, cross_check, evidence, worker)


def _analyze(
    run_dir: Path,
    manifest: Manifest,
    timer: StageTimer,
    errors: list[str],
    probes: list[dict[str, Any]] | None,
    cross_check: bool = False,
    evidence: bool | None = None,
    worker: ScapyWorker | None = None,
    tables: NodeTables | None = None,
) -> Outcome:
    worker = worker or ScapyWorker()
    try:  # an interrupt leaves no scapy process, nor its queue of frames, behind
        return _decode_judge_report(run_dir, manifest, timer, errors, probes, cross_check, evidence, worker, tables)
    finally:
        worker.close()


def _decode_judge_report(
    run_dir: Path,
    manifest: Manifest,
    timer: StageTimer,
    errors: list[str],
    probes: list[dict[str, Any]] | None,
    cross_check: bool,
    evidence: bool | None,
    worker: ScapyWorker,
    tables: NodeTables | None,
) -> Outcome:
    timer.stage("decode", f"{len(manifest.captures)} capture(s)")
    expectations = plan(manifest.topology, manifest.pairs, manifest.pods_by_node())
    captured = sum((run_dir / c.file).stat().st_size for c in manifest.captures if (run_dir / c.file).is_file())
    every_flow = evidence is True or len(expectations) <= EVIDENCE_FLOWS_LIMIT  # --evidence: every direction's
    if evidence is None:
        evidence = captured <= EVIDENCE_AUTO_BYTES
    # The evidence files need only the flows' addresses, known from the plan: they are written
    # beside the decode (mostly while it waits for scapy's import in the worker). At scale, all-nodes
    # only, here; the failing directions' own files once they are known.
    early_evidence = _EvidenceWriter(run_dir, manifest, expectations if every_flow else []) if evidence else None
    judged = judged_addresses(manifest)
    reading = reading_for(manifest.topology)  # the formats this overlay can put on the wire (core/encap.py)
    seen: dict[CapturePoint, dict[FlowKey, FlowTally]] = {}
    link_headers: dict[CapturePoint, int] = {}
    warnings: list[str] = []
    # A node whose capture is missing, unreadable or cut off by a failed backend cannot vouch for
    # any direction through it: node -> why.
    unusable: dict[str, str] = dict(manifest.capture_errors)
    states: dict[str, PointState] = {}
    point_report: list[dict[str, Any]] = []
    spot_check = SpotCheck()  # scapy's re-reading, budgeted across the run's captures
    # scapy's answers are verified after the judge, which runs while scapy reads: a disagreement (a
    # bug of ours, rare) takes that capture out and the directions are judged again without it.
    checks: list[PendingCheck] = []
    checked: dict[str, tuple[CapturePoint, dict[str, Any]]] = {}  # file -> its point and report entry
    ahead = ReadAhead([run_dir / cap.file for cap in manifest.captures], manifest.topology.overlay.port, judged,
                      reading)
    for number, cap in enumerate(manifest.captures):
        point = CapturePoint(cap.node, cap.iface)
        entry: dict[str, Any] = {"node": cap.node, "iface": cap.iface, "file": cap.file,
                                 "kernel_dropped": cap.kernel_dropped, "damaged": None, "usable": True,
                                 # the filter tcpdump ran with: a precise capture holds the test pods' traffic only
                                 "filter": cap.filter}
        point_report.append(entry)
        if cap.failed is not None:  # what it wrote is still shown, but it vouches for nothing
            unusable[cap.node] = f"{cap.file}: the capture backend failed ({cap.failed})"
            entry.update(usable=False, problem=unusable[cap.node])
        try:
            seen[point], link_headers[point], damaged = decode_point(
                run_dir / cap.file, warnings, manifest.topology.overlay.port, judged, worker.submit, reading,
                spot_check=spot_check, fast=partial(ahead.get, number), checks=checks,
            )
        except ValueError as err:  # this file's one-line reason; the other files still count
            message = str(err).replace(str(run_dir / cap.file), cap.file)  # reports travel: no local paths
            message = message if message.startswith(cap.file) else f"{cap.file}: {message}"
            errors.append(message)
            unusable[cap.node] = message
            entry.update(usable=False, problem=message)
            continue
        checked[(run_dir / cap.file).name] = point, entry
        entry["damaged"] = damaged
        entry["spot_checked"] = spot_check.per_capture.get(cap.file, 0)
        states[str(point)] = PointState(str(point), cap.kernel_dropped, damaged)
        if cap.kernel_dropped:
            warnings.append(f"{cap.file}: tcpdump says {cap.kernel_dropped} packets were dropped by the kernel: "
                            "the capture is incomplete")
    ahead.close()
    for node, why in manifest.capture_errors:
        point_report.append({"node": node, "iface": None, "file": None, "usable": False, "problem": why})

    if tables is not None and tables.pending:
        # what is left of reading them once the decode is done
        timer.stage("tables", f"links of {len(tables.nodes)} node(s), read beside the probes")
        errors.extend(tables.wait())
    timer.stage("judge")
    judged_from = len(warnings)  # the judge's own warnings follow: taken back if it judges again
    verdicts, mtu = _judge(run_dir, manifest, expectations, seen, link_headers, unusable, states, warnings)

    timer.stage("spot-check", f"scapy re-reads {spot_check.frames} sample frame(s) of the fast decoder's")
    disagreements = _verify(checks)
    worker.close()
    if disagreements:
        for name, message in disagreements.items():  # as a capture that could not be read
            point, entry = checked[name]
            errors.append(message)
            unusable[point.node] = message
            seen.pop(point, None)
            states.pop(str(point), None)
            for key in ("damaged", "spot_checked"):
                entry.pop(key, None)
            entry.update(usable=False, problem=message)
        timer.stage("judge")
        del warnings[judged_from:]
        verdicts, mtu = _judge(run_dir, manifest, expectations, seen, link_headers, unusable, states, warnings)

    timer.stage("report")
    # Discovery's notes (a /32 InternalIP fallback makes CrossSubnet behave like Always) change
    # what the verdicts expect: they travel with the run and are shown with its result.
    extra: dict[str, Any] = {"notes": list(manifest.notes), "warnings": warnings, "captures": point_report}
    if probes is not None:
        extra["probes"] = probes
    report = report_dict(verdicts, run_id=manifest.run_id, errors=errors, extra=extra)
    for flow, section in zip(report["flows"], mtu):
        flow["mtu"] = section
    if manifest.plan is not None:
        report["plan"] = manifest.plan
    report["spot_check"] = spot_check.summary()
    found = blame_flows(report["flows"])
    report["blame"] = None if found is None else found.to_dict()
    if tables is not None and tables.deferred:
        timer.stage("tables", "routes, neighbours and FDB of the senders of failing directions")
        report["errors"] += tables.complete([f["src_node"] for f in report["flows"] if f["verdict"] != "pass"])
        report["node_tables"] = tables.summary()
        timer.stage("report")
    explain_failures(run_dir, manifest, report)
    if cross_check:
        timer.stage("cross-check", "tshark's dissectors on the same captures")
        cross_check_decode(run_dir, manifest, report)

    timer.stage("evidence", "per-flow pcapng for Wireshark, report.html")
    if early_evidence is not None:
        report["evidence"] = early_evidence.result(report, every_flow)
    else:
        report["evidence"] = {
            "skipped": f"captures hold {captured / 2**20:.0f} MiB: per-flow evidence not written "
            f"(`vxcap analyze --evidence {run_dir}` writes it)"
        }
        warnings.append(report["evidence"]["skipped"])
    add_wireshark_commands(run_dir, manifest, report)
    report["timings"] = {k: round(v, 4) for k, v in timer.done().items()}
    text = _write_reports(run_dir, report, render_html(report, manifest, run_dir))
    return Outcome(run_dir=run_dir, report=report, verdicts=verdicts, timings=report["timings"], report_text=text)


def _verify(checks: list[PendingCheck]) -> dict[str, str]:
    """Capture file -> why scapy disagrees with the fast decoder on one of its frames (waits for scapy)."""
    disagreements: dict[str, str] = {}
    for check in checks:
        try:
            check.verify()
        except DecoderDisagreement as err:
            disagreements[check.name] = str(err)
    return disagreements


def _judge(
    run_dir: Path, manifest: Manifest, expectations: list[Any], seen: dict[CapturePoint, dict[FlowKey, FlowTally]],
    link_headers: dict[CapturePoint, int], unusable: dict[str, str], states: dict[str, PointState],
    warnings: list[str],
) -> tuple[list[Any], list[Any]]:
    """Every direction's verdict from what the captures saw, and its MTU section."""
    macs = underlay_macs(run_dir, manifest)
    verdicts = []
    for e, view in zip(expectations, flow_views(seen, expectations)):
        if e.expected is Wire.WIREGUARD:
            # Encrypted: the pods' echoes are not on the underlay; the nodes' tunnel is (core/verdict.py).
            tunnel = {point: seen[point].get(e.tunnel_key) for point in view}
            verdict = judge(e, view, unusable, tunnel=tunnel, sent=manifest.sent(e.src_node, e.dst_node, e.family))
            # The capture cannot tell answered echoes from lost ones here; the prober's own count can.
            answered = manifest.received(e.src_node, e.dst_node, e.family)
            sent = manifest.sent(e.src_node, e.dst_node, e.family)
            lost = (f"delivery: {answered} of {sent} echo requests answered (the prober's count: the capture "
                    "cannot read encrypted echoes)",) if sent and answered is not None and answered < sent else ()
            verdicts.append(replace(verdict, reasons=verdict.reasons + lost, not_checked=verdict.not_checked + (
                "delivery: WireGuard encrypts the echoes, so which were answered is ping's to say, not the capture's",)))
            continue
        # The nodes' pair too: WireGuard where VXLAN or plain was promised is named, not "no packets seen".
        verdict = judge(e, view, unusable, tunnel={point: seen[point].get(e.tunnel_key) for point in view})
        delivery = judge_delivery(
            e.src_node,
            e.dst_node,
            {str(point): flows for point, flows in view.items()},
            {str(point): seen[point].get((e.dst_ip, e.src_ip)) for point in view},
            {str(point): point.node for point in view},
            sender_mac=macs.get(e.src_node),
            receiver_mac=macs.get(e.dst_node),
            sent=manifest.sent(e.src_node, e.dst_node, e.family),
            states=states,
        )
        # A flow not seen at all already fails as such: "no echo request seen" would only repeat it.
        delivery_reasons = delivery.reasons if verdict.packets else ()
        verdicts.append(replace(verdict, reasons=verdict.reasons + delivery_reasons, delivery=delivery,
                                not_checked=verdict.not_checked + delivery.not_checked))
    mtu = judge_mtu(run_dir, manifest, expectations, seen, link_headers, warnings)
    # MTU failures fail the direction like any other reason: report, JUnit and exit status follow.
    return [replace(v, reasons=v.reasons + tuple(fail_reasons(section))) for v, section in zip(verdicts, mtu)], mtu
