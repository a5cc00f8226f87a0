"""A TCP proxy in front of a test redis-server that makes Redis unreachable at a chosen command.

A test arms a trap with byte strings that identify a command (say `EVALSHA` and a script's
SHA-1); when a client sends a chunk holding all of them the proxy either drops it unsent
(`before`: the command never reached Redis) or sends it, waits for Redis to run it and drops the
reply (`after`: the command ran, the client never learns it). Then Redis is unreachable for
`outage` seconds: every open connection is cut and new ones are closed as soon as accepted.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from tests.tcpproxy import Link, LoopbackProxy


@dataclass
class _Trap:
    needles: tuple[bytes, ...]
    when: Literal["before", "after"]
    outage: float
    fired: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _RedisLink(Link):
    muted: bool = False  # replies from Redis are dropped


class RedisProxy(LoopbackProxy[_RedisLink]):
    def __init__(self, target_port: int) -> None:
        self._trap: _Trap | None = None
        self._down_until = 0.0
        super().__init__(target_port, backlog=512, connect_timeout=2)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def trap(self, *needles: bytes, when: Literal["before", "after"], outage: float) -> threading.Event:
        """Arm a one-shot trap; the returned event is set once it has fired."""
        trap = _Trap(needles, when, outage)
        with self._lock:
            self._trap = trap
        return trap.fired

    def wait_up(self) -> None:
        """Until the current outage (if any) is over."""
        time.sleep(max(0.0, self._down_until - time.monotonic()))

    def disarm(self) -> None:
        with self._lock:
            self._trap = None

    # -- internals --------------------------------------------------------------------------

    def _refuses(self) -> bool:
        return time.monotonic() < self._down_until

    def _link(self, client: socket.socket, server: socket.socket) -> _RedisLink:
        return _RedisLink(client, server)

    def _upstream(self, link: _RedisLink) -> None:
        try:
            while True:
                data = link.client.recv(65536)
                if not data:
                    break
                trap = self._spring(data)
                if trap is None:
                    link.server.sendall(data)
                    continue
                if trap.when == "after":
                    link.muted = True
                    link.server.sendall(data)
                    time.sleep(0.3)  # Redis runs it; the reply is dropped
                self._outage(trap.outage)
                trap.fired.set()
                break
        except OSError:
            pass
        self._drop(link)

    def _downstream(self, link: _RedisLink) -> None:
        try:
            while True:
                data = link.server.recv(65536)
                if not data:
                    break
                if not link.muted:
                    link.client.sendall(data)
        except OSError:
            pass
        self._drop(link)

    def _spring(self, data: bytes) -> _Trap | None:
        with self._lock:
            trap = self._trap
            if trap is None or not all(n in data for n in trap.needles):
                return None
            self._trap = None
            return trap

    def _outage(self, seconds: float) -> None:
        self._down_until = time.monotonic() + seconds
        self._cut_all()
