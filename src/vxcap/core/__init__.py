"""The pure core: plain data in, plain data out. No I/O, no processes, no UI.

An import-linter contract (pyproject.toml) keeps it that way.
"""
