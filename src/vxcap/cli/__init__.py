"""The command line: parses arguments and renders; the work happens elsewhere."""
