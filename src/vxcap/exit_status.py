"""Exit statuses: the one place they are defined."""

from enum import IntEnum


class ExitStatus(IntEnum):
    SUCCESS = 0  # every verdict passed
    VERDICT_FAILED = 1  # at least one direction failed, or the run could not judge
    USAGE = 2  # bad usage or input: a name, file, field or address to fix
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; whatever was made has been removed
