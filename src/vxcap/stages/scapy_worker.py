"""scapy's side of the spot-check, in a process of its own started before the fast decode, so that
importing scapy (0.15-0.25 s: its layers, and the host's interfaces and routes it reads at import)
runs beside the decode instead of after it. The answers are scapy's own (`vxcap.core.decode.
decode_frame` in the worker, the same function the spot-check called in process); when the worker
cannot be started or fails, the frames are dissected here, in process, as before.

The protocol is pickles with a length in front over the worker's stdin/stdout; the worker ends when
its stdin closes, so a parent that dies leaves nothing behind.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

_LENGTH = struct.Struct("<Q")
_SERVE = "from vxcap.stages.scapy_worker import serve; serve()"


def _send(stream, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the scapy worker ended")
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the scapy worker ended")
    return pickle.loads(data)


def in_process(frames: dict[int, Any], reading: Any = None) -> dict[int, Any]:
    """The same dissection in this process."""
    from vxcap.core.decode import decode_frame

    return {index: _decode(decode_frame, f.data, f.linktype, f.wire_len, reading) for index, f in frames.items()}


def _decode(decode_frame: Any, data: bytes, linktype: int, wire_len: int, reading: Any) -> Any:
    # None: the decoder's own default reading (IPv4 VXLAN on 4789), as a caller without a run's overlay gets
    if reading is None:
        return decode_frame(data, linktype, wire_len)
    return decode_frame(data, linktype, wire_len, reading)


class ScapyWorker:
    """Dissects frames (`pcapfile.RawFrame`s by index) with scapy: `dissect` -> index -> FrameFacts | None."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._asker: Any = None  # the thread `submit` asks the worker from, made at the first submission
        self._closed = False
        if getattr(sys, "frozen", False):  # a bundled vxcap: sys.executable is not a Python to run -c with
            return
        # The worker imports this very vxcap, wherever it was imported from here.
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
        try:
            # A session of its own: a Ctrl-C at the terminal interrupts vxcap, which ends the worker,
            # rather than the worker printing a traceback of its own.
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                start_new_session=True, env=env,
            )
        except OSError:
            self._proc = None  # dissected in process

    def dissect(self, frames: dict[int, Any], reading: Any = None) -> dict[int, Any]:
        """index -> FrameFacts | None; CancelledError once the worker is closed (an interrupt: nothing is
        dissected in this process either)."""
        if not frames:
            return {}
        answer = self._ask(frames, reading)
        if answer is None and self._closed:
            raise CancelledError()
        # None: no worker, or it could not dissect (it says why): the same call here raises it where it belongs
        return in_process(frames, reading) if answer is None else answer

    def submit(self, frames: dict[int, Any], reading: Any = None) -> Future:
        """`dissect`'s answer, later: the frames go to the worker from a thread of this process, in the
        order submitted, while the caller goes on (a run judges while scapy reads; at 256 nodes the
        two are each about a second). After `close`, what was not answered is cancelled."""
        if self._asker is None:
            self._asker = ThreadPoolExecutor(1, thread_name_prefix="vxcap-scapy")
        return self._asker.submit(self.dissect, frames, reading)

    def _ask(self, frames: dict[int, Any], reading: Any) -> dict[int, Any] | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            _send(proc.stdin, (reading, [(i, (f.data, f.linktype, f.wire_len)) for i, f in frames.items()]))
            answer = _receive(proc.stdout)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):  # ValueError: a stream closed under it
            self._end_process()
            return None
        return answer if isinstance(answer, dict) else None

    def close(self) -> None:
        self._closed = True
        self._end_process()
        asker, self._asker = self._asker, None
        if asker is not None:
            asker.shutdown(wait=True, cancel_futures=True)

    def _end_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # It holds nothing worth finishing: one still importing scapy (a run with nothing to
        # check) is not waited for. Killed before its pipes are closed: a thread of ours may be
        # reading its answer, and closing a stream under a reader waits for that read to end.
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        proc.wait()

    def __enter__(self) -> ScapyWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve() -> None:
    """The worker: frames in, scapy's facts out, until stdin closes."""
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything printed goes to stderr, not into the replies
    try:
        from scapy.config import conf

        # It only dissects: the host's routing tables, which scapy reads at import for sending, are not needed.
        conf.route_autoload = False
        conf.route6_autoload = False
        from vxcap.core.decode import decode_frame
    except Exception:  # noqa: BLE001 - the parent dissects in process, and meets the same error where it belongs
        return

    while True:
        try:
            reading, frames = _receive(requests)
        except EOFError:
            return
        try:
            answer: Any = {
                i: _decode(decode_frame, data, linktype, wire_len, reading) for i, (data, linktype, wire_len) in frames
            }
        except Exception as err:  # noqa: BLE001 - reported to the parent, which dissects in process
            answer = repr(err)
        _send(replies, answer)
