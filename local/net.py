"""Ports on this machine, for the emulators and the tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on every interface (DynamoDB Local listens on 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Jetty does
        try:
            sock.bind(("", port))
        except OSError:
            return True
        return False
