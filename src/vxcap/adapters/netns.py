"""Runs lab `Step`s with iproute2 and reads namespaces back as JSON.

Knows only iproute2 (`ip`, `bridge`), `sysctl` and setns(2). Consecutive steps
for the same namespace and tool run as one `ip -n NS -batch -` (or `bridge
-batch`), one process instead of dozens: that is what keeps `lab up` well under
a second. `entered` moves one thread into a namespace for programs and sockets
that need no `ip netns exec` (which costs an exec, a setns and a /sys remount).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import select
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from vxcap.core.errors import VxcapError
from vxcap.core.lab.plan import Step

DEFAULT_TIMEOUT = 30.0
NETNS_RUN_DIR = "/run/netns"  # where `ip netns add` bind-mounts named namespaces
CLONE_NEWNET = 0x40000000


class NetnsError(VxcapError, RuntimeError):
    """A namespace command failed; the message is one line naming the command and the kernel's answer."""


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) if lines else "no message"


def run(
    argv: Sequence[str], *, input: str | None = None, timeout: float = DEFAULT_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        proc = _run_through_files(argv, input, timeout)
    except FileNotFoundError:
        hint = "install iproute2 (and procps for sysctl)" if argv[0] in ("ip", "bridge", "sysctl") else "is it installed?"
        raise NetnsError(f"{argv[0]} not found: {hint}") from None
    except subprocess.TimeoutExpired:
        raise NetnsError(f"{' '.join(argv[:6])} did not finish within {timeout:g} s") from None
    if check and proc.returncode != 0:
        where = " ".join(argv) if input is None else f"{' '.join(argv)} <<< {_one_line(input)}"
        raise NetnsError(f"{where}: {_one_line(proc.stderr or proc.stdout)}")
    return proc


def _run_through_files(argv: Sequence[str], input: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    """subprocess.run with the output in files, not pipes: `ip` writes a large table a few KiB
    at a time, and reading a pipe woke this process (and took the GIL) about 90 times per
    command. A file is read once, when the command is done.

    The files are memfds (no directory entry, no journal: a file in /tmp cost about 0.3 ms to
    make, three per command), and the wait blocks on a pidfd until the command ends or its time is
    up: subprocess's wait with a timeout polls with sleeps that double from 0.5 ms, which made a
    6 ms command take up to 11 ms. A 256-node lab's tables are 768 commands.
    """
    with _memfile("stdout") as out, _memfile("stderr") as err, _memfile("stdin") as stdin:
        if input is not None:
            stdin.write(input.encode())
            stdin.seek(0)
        proc = subprocess.Popen(list(argv), stdin=stdin if input is not None else None, stdout=out, stderr=err)
        try:
            returncode = _wait(proc, timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    """The exit status, waiting in poll(2) on a pidfd: woken when the command ends, not on a timer."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait()


@contextmanager
def _memfile(name: str) -> Iterator[Any]:
    with open(os.memfd_create(name, os.MFD_CLOEXEC), "w+b") as handle:
        yield handle


def exec_prefix(netns: str | None) -> list[str]:
    """The argv prefix that runs a program inside `netns`."""
    return [] if netns is None else ["ip", "netns", "exec", netns]


_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:  # Python 3.11 has no os.setns; the symbol is in the libc the interpreter already loaded
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(CLONE_NEWNET)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(netns_name: str) -> Iterator[None]:
    """Run the block with the calling thread (only it) inside the named network namespace.

    Sockets created in the block stay in that namespace after it; programs started
    from the block start there. The thread always goes back to the namespace it
    came from, also when the block raises or is interrupted.
    """
    if not netns_name or "/" in netns_name or netns_name in (".", ".."):
        raise NetnsError(f"{netns_name!r} is not a network namespace name")
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise NetnsError(f"cannot open this thread's network namespace: {err.strerror}") from None
    try:
        try:
            target = os.open(f"{NETNS_RUN_DIR}/{netns_name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:  # worded as `ip netns exec` says it, which callers and users know
            raise NetnsError(f'Cannot open network namespace "{netns_name}": {err.strerror}') from None
        try:
            _setns(target)
        except OSError as err:
            raise NetnsError(f'setting the network namespace "{netns_name}" failed: {err.strerror}') from None
        finally:
            os.close(target)
        yield
    finally:
        # Unconditional: also covers an interrupt between entering and the block, and is
        # harmless when the thread never left. A thread left behind would probe from the wrong place.
        try:
            _setns(home)
        except OSError as err:
            raise NetnsError(f"returning to the original network namespace failed: {err.strerror}") from None
        finally:
            os.close(home)


def _batchable(step: Step) -> bool:
    # `-batch` splits lines on whitespace; an argument with a space must run on its own.
    return step.argv[0] in ("ip", "bridge") and not any(not a or any(c.isspace() for c in a) for a in step.argv)


def _groups(steps: Iterable[Step]) -> list[list[Step]]:
    groups: list[list[Step]] = []
    for step in steps:
        if groups and _batchable(step) and _batchable(groups[-1][0]) and (
            (groups[-1][0].netns, groups[-1][0].argv[0]) == (step.netns, step.argv[0])
        ):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def _inside(netns: str | None, argv: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """`run` with the program started inside `netns` (from a thread that entered it).

    Not `ip -n` or `ip netns exec`: those give each process a mount namespace of its own
    with /sys remounted, about 3 ms a process, and a 256-node lab runs thousands of them.
    `ip` and `bridge` speak netlink and need nothing of /sys; sysctl's /proc/sys/net is
    the reading process's own network namespace.
    """
    if netns is None:
        return run(argv, **options)
    with entered(netns):
        try:
            return run(argv, **options)
        except NetnsError as err:
            raise NetnsError(f"in {netns}: {err}") from None


def run_steps(steps: Iterable[Step], *, force: bool = False) -> None:
    """Run steps in order; stop at the first failure with NetnsError.

    `force` runs every step even when some fail (for teardown, where a missing
    device is no reason to leave the rest behind) and raises nothing.
    """
    for group in _groups(steps):
        first = group[0]
        tool = first.argv[0]
        try:
            if len(group) > 1:
                argv = [tool] + (["-force"] if force else []) + ["-batch", "-"]
                script = "".join(" ".join(step.argv[1:]) + "\n" for step in group)
                _inside(first.netns, argv, input=script, check=not force)
            else:
                _inside(first.netns, list(first.argv), check=not force)
        except NetnsError:
            if not force:
                raise
            # forced (teardown): a namespace already gone has nothing left to undo


def list_netns() -> set[str]:
    """Names under /run/netns (what `ip netns list` shows)."""
    out = run(["ip", "-j", "netns", "list"]).stdout.strip()
    if not out:  # iproute2 prints nothing at all when there is no namespace
        return set()
    return {entry["name"] for entry in json.loads(out)}


def add_netns(names: Iterable[str]) -> None:
    run_steps(Step(None, ("ip", "netns", "add", name)) for name in names)


def delete_netns(names: Iterable[str]) -> list[str]:
    """Delete the named namespaces that exist; returns the ones deleted."""
    present = list_netns()
    doomed = [name for name in names if name in present]
    if doomed:
        run_steps(Step(None, ("ip", "netns", "delete", name)) for name in doomed)
    return doomed


def netns_pids(netns: str) -> list[int]:
    proc = run(["ip", "netns", "pids", netns], check=False)
    return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]


def _json_stream(text: str) -> list[Any]:
    """`-j -batch` prints one JSON document per command, one after the other."""
    return [doc for doc, _ in _json_docs(text)]


def _json_docs(text: str) -> list[tuple[Any, str]]:
    """Each document of the stream, parsed and as the text it was."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        doc, end = decoder.raw_decode(text, pos)
        docs.append((doc, text[pos:end]))
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def query(tool: str, netns: str, commands: Sequence[str], *, details: bool = False, family: str | None = None) -> list[Any]:
    """Run show commands (e.g. "addr show") as one `-j` batch inside `netns`; one parsed document each.

    -force lets every query answer even if one fails; a missing answer is an error. `family` ("-6")
    goes before the batch: a batch line cannot carry it, and `route show` lists IPv4 alone without it.
    """
    return [doc for doc, _ in query_texts(tool, netns, commands, details=details, family=family)]


def query_texts(tool: str, netns: str, commands: Sequence[str], *, details: bool = False,
                family: str | None = None) -> list[tuple[Any, str]]:
    """`query`, each answer also as the JSON text the tool printed (to save as it is)."""
    argv = [tool, "-j"] + ([family] if family else []) + (["-d"] if details else []) + ["-force", "-batch", "-"]
    proc = _inside(netns, argv, input="".join(c + "\n" for c in commands), check=False)
    try:
        docs = _json_docs(proc.stdout)
    except ValueError:
        raise NetnsError(f"{' '.join(argv)} in {netns}: unreadable JSON: {_one_line(proc.stdout)}") from None
    if len(docs) != len(commands):
        raise NetnsError(f"{tool} -n {netns}: {len(docs)} answers to {len(commands)} queries: {_one_line(proc.stderr)}")
    return docs
