"""Test doubles that speak the real protocols (HTTP, WebSocket) to the real clients."""
