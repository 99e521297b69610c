"""Adapters: thin wrappers around one outside system each (the kernel's namespaces, tcpdump, ...)."""
