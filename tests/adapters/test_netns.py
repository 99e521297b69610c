"""`netns.entered` on the real kernel: which namespace a thread, its sockets and its children are in.

A namespace is told apart by its inode (what /proc/.../ns/net links to) and by
an address only it has. Needs root; skips cleanly without.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest

from tests.lab_support import SESSION_PREFIX, lab_test
from vxcap.adapters import netns
from vxcap.adapters.netns import NetnsError

ONLY_THERE = "10.254.0.1"  # an address given to the test namespace alone (on a bridge: not every kernel has dummy)


def thread_ns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def named_ns(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


@pytest.fixture
def test_ns():
    name = f"{SESSION_PREFIX}-nstest"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "d0", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", f"{ONLY_THERE}/32", "dev", "d0"], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "d0", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


@lab_test
def test_the_thread_goes_in_and_comes_back(test_ns):
    home = thread_ns()
    assert named_ns(test_ns) != home
    with netns.entered(test_ns):
        assert thread_ns() == named_ns(test_ns)
    assert thread_ns() == home


@lab_test
def test_the_thread_comes_back_when_the_block_raises(test_ns):
    home = thread_ns()
    with pytest.raises(ZeroDivisionError):
        with netns.entered(test_ns):
            assert thread_ns() == named_ns(test_ns)
            1 / 0  # noqa: B018 - the block fails
    assert thread_ns() == home


@lab_test
def test_only_the_calling_thread_moves(test_ns):
    home, seen, inside, may_look = thread_ns(), [], threading.Event(), threading.Event()

    def look():
        inside.wait(5)
        seen.append(thread_ns())
        may_look.set()

    other = threading.Thread(target=look)
    other.start()
    with netns.entered(test_ns):
        inside.set()
        assert may_look.wait(5)
    other.join(5)
    assert seen == [home]


@lab_test
def test_a_socket_made_inside_stays_there_after_the_thread_left(test_ns):
    with netns.entered(test_ns):
        inside = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    outside = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with inside, outside:
        inside.bind((ONLY_THERE, 0))  # the address exists only in the test namespace
        with pytest.raises(OSError):
            outside.bind((ONLY_THERE, 0))


@lab_test
def test_a_program_started_inside_runs_there(test_ns):
    with netns.entered(test_ns):
        addrs = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
        link = subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True, text=True, check=True).stdout
    assert ONLY_THERE in addrs
    assert link.strip() == f"net:[{named_ns(test_ns)}]"
    after = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    assert ONLY_THERE not in after


@lab_test
def test_a_missing_namespace_is_a_one_line_error_and_nothing_moves():
    home = thread_ns()
    with pytest.raises(NetnsError, match=rf'^Cannot open network namespace "{SESSION_PREFIX}-nosuch": No such file') as err:
        with netns.entered(f"{SESSION_PREFIX}-nosuch"):
            pytest.fail("the block must not run")
    assert "\n" not in str(err.value)
    assert thread_ns() == home


@pytest.mark.parametrize("name", ["", ".", "..", "../../proc/1/ns/net", "a/b"])
def test_a_name_that_is_a_path_is_refused(name):
    with pytest.raises(NetnsError, match="is not a network namespace name"):
        with netns.entered(name):
            pytest.fail("the block must not run")


# -- netns.run: output through memfds, the wait on a pidfd ---------------------------------


def test_run_returns_the_output_status_and_reads_its_input():
    proc = netns.run(["sh", "-c", "cat; printf out; echo err >&2; exit 3"], input="in:", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "in:out", "err\n")


def test_run_output_larger_than_a_pipe_holds_arrives_whole():
    proc = netns.run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"])
    assert proc.stdout == "x" * 300000


def test_a_command_that_outlives_its_timeout_is_killed_and_named():
    with pytest.raises(NetnsError, match=r"^sleep 30 did not finish within 0\.3 s$"):
        netns.run(["sleep", "30"], timeout=0.3)
    # killed and reaped, not left behind: no sleep 30 of ours is still a child of this process
    children = subprocess.run(["ps", "-o", "args=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    assert "sleep 30" not in children.stdout
