"""The progress display: live on a terminal, plain lines in a log."""

import io
import re

from rich.console import Console

from vxcap.cli.live import LiveProgress


def console(terminal):
    return Console(file=io.StringIO(), force_terminal=terminal, width=120, color_system=None)


def test_plain_lines_start_with_the_stage_and_say_the_waits_below_it():
    out = console(False)
    with LiveProgress(console=out) as live:
        live.stage("provision", "test pods on a, b")
        live.waiting("test pods Ready 1/2")
        live.stage("probe", "2 direction(s)")
        live.waiting("packets captured: a 4 · b 4")
        live.waiting("packets captured: a 6 · b 6")  # within 5 s of the last: held back...
        live.stage("stop", "2 capture(s)")  # ...and told when the stage ends
    lines = out.file.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["provision", "·", "probe", "·", "·", "stop"]
    assert lines[1].strip() == "· test pods Ready 1/2"
    assert lines[3].strip().endswith("a 4 · b 4") and lines[4].strip().endswith("a 6 · b 6")
    assert re.search(r"provision test pods on a, b \+\d+\.\ds$", lines[0])


def test_on_a_terminal_finished_stages_stay_with_their_time_and_what_they_waited_for():
    out = console(True)
    with LiveProgress(console=out) as live:
        live.stage("capture", "tcpdump on 2 node(s)")
        live.waiting("captures listening 2/2")
        live.stage("probe", "2 direction(s)")
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.file.getvalue())
    assert re.search(r"✓ capture +tcpdump on 2 node\(s\) \(captures listening 2/2\) \d+\.\ds", text), text
    assert re.search(r"✓ probe +2 direction\(s\) \d+\.\ds", text), text


def test_quiet_says_nothing():
    out = console(False)
    with LiveProgress(quiet=True, console=out) as live:
        live.stage("probe", "x")
        live.waiting("captures listening 1/1")
    assert out.file.getvalue() == ""


def test_a_stage_that_ended_in_an_error_is_not_ticked():
    out = console(True)
    try:
        with LiveProgress(console=out) as live:
            live.stage("discover", "a cluster")
            raise RuntimeError("no kubeconfig")
    except RuntimeError:
        pass
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.file.getvalue())
    assert "✗ discover" in text and "✓" not in text
