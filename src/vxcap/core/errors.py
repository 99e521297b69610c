"""Errors a user can act on: shown as one line, exit status 2, never a traceback."""


class VxcapError(Exception):
    """Base of every error vxcap reports as a one-line message (exit status 2):
    bad input, or an outside system (cluster, Docker, tcpdump) not as required."""


class InputError(VxcapError, ValueError):
    """Bad input: a name, file, field or address the user supplied or pointed at."""
