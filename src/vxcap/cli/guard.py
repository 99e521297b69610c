"""How every command ends: one line for an error a person can act on, the exit status
from ExitStatus, and after Ctrl-C (or SIGTERM) what was kept or removed, truthfully."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable

from vxcap.exit_status import ExitStatus


class Fail(Exception):
    """End the command with this status (what it had to say is already printed)."""

    def __init__(self, status: ExitStatus) -> None:
        self.status = status


class Interrupted(Exception):
    """Ctrl-C, with what the command knows about what it left: printed after `interrupted:`."""

    def __init__(self, aftermath: str) -> None:
        self.aftermath = aftermath


def _raise_interrupt(signum, frame):  # SIGTERM must unwind like Ctrl-C, so cleanup runs
    raise KeyboardInterrupt


def guarded(nothing_made: bool = True) -> Callable:
    """Wrap a command: input errors and OSErrors are one line and exit 2, interrupts exit 130.

    `nothing_made`: the command makes nothing to remove (analyze, report, topology, ...), so an
    interrupt says only that; commands that do make things raise Interrupted with what they left.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from vxcap.cli.console import error
            from vxcap.core.errors import VxcapError

            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
            try:
                return fn(*args, **kwargs)
            except Interrupted as stop:
                error(f"interrupted: {stop.aftermath}")
                sys.exit(ExitStatus.INTERRUPTED)
            except KeyboardInterrupt:
                error("interrupted" + (" (this command has nothing to remove)" if nothing_made else ""))
                sys.exit(ExitStatus.INTERRUPTED)
            except Fail as fail:
                sys.exit(fail.status)
            except VxcapError as err:
                error(str(err))
                for hint in getattr(err, "hints", ()):
                    error_hint(hint)
                sys.exit(ExitStatus.USAGE)
            except OSError as err:
                error(os_error(err))
                sys.exit(ExitStatus.USAGE)
            finally:
                signal.signal(signal.SIGTERM, previous)

        return wrapper

    return wrap


def os_error(err: OSError) -> str:
    """'cannot write captures/x/report.json: No space left on device', in one line."""
    where = err.filename if err.filename is not None else ""
    what = err.strerror or str(err) or type(err).__name__
    return f"{where}: {what}" if where else what


def error_hint(text: str) -> None:
    from vxcap.cli.console import err_console

    err_console.print(f"  [hint]{text}[/]", soft_wrap=True)


def require_root(what: str) -> None:
    import os

    if os.geteuid() != 0:
        from vxcap.cli.console import error

        error(f"{what} needs root (it creates network namespaces and runs tcpdump): run it as root")
        error_hint("`vxcap doctor --lab` lists what else it needs")
        raise Fail(ExitStatus.USAGE)


def add_no_cluster_hints(err: Exception, lab_command: str) -> None:
    """No kubeconfig anywhere: this machine has no cluster, and the embedded lab is what works here."""
    errors = sys.modules.get("vxcap.adapters.kube.errors")  # not imported: the error cannot be one of its
    if errors is None or not isinstance(err, errors.NoKubeconfig):
        return
    err.hints = (  # type: ignore[attr-defined]
        f"no cluster here? the embedded lab needs none: {lab_command}   (as root)",
        "vxcap doctor --lab (or vxcap doctor) checks what a run needs, one line each with the fix",
    )
