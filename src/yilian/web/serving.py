"""Serving the app from several worker processes."""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess


class TCPConfig(uvicorn.Config):
    """uvicorn makes the listening socket its workers share with protocol 0, and asyncio sets TCP_NODELAY only on
    accepted sockets whose protocol is TCP: every answer then waited for Nagle and the client's delayed ACK (≈ 40 ms
    on loopback, more than a referral's own work). This is the same socket, re-read so that its protocol says TCP."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        tcp = socket.socket(fileno=sock.detach())  # family, type and protocol read back from the descriptor
        tcp.set_inheritable(True)
        return tcp


def run_workers(host: str, port: int, workers: int) -> None:
    """Each worker process builds its own app (`create_app`)."""
    config = TCPConfig(
        "yilian.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning"
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
