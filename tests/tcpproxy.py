"""A TCP proxy in front of an HTTP server that cuts a connection in the middle of a reply.

A test arms a one-shot cut with two byte strings: the next request holding `request` gets its
reply forwarded up to and including the first `reply` in it, and then both sides of that
connection are closed, as a dropped network link would leave them (the client has part of the
reply; the server had sent all of it). Every request that passes is recorded, so a test can see
what a client sent (its headers) before and after the cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from tests.support import free_port


@dataclass
class _Cut:
    request: bytes
    reply: bytes
    fired: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Link:
    client: socket.socket
    server: socket.socket
    cut: _Cut | None = None  # armed for the reply now on its way


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._cut: _Cut | None = None
        self._requests: list[bytes] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[bytes]:
        """What clients sent, a read at a time (a request's head arrives in one read)."""
        with self._lock:
            return list(self._requests)

    def cut(self, request: bytes, reply: bytes) -> threading.Event:
        """Arm a one-shot cut; the returned event is set once it has happened."""
        cut = _Cut(request, reply)
        with self._lock:
            self._cut = cut
        return cut.fired

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            self._drop(link)

    # -- internals --------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            link = _Link(client, server)
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._upstream, args=(link,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link,), daemon=True).start()

    def _upstream(self, link: _Link) -> None:
        try:
            while True:
                data = link.client.recv(65536)
                if not data:
                    break
                with self._lock:
                    self._requests.append(data)
                    if self._cut is not None and self._cut.request in data:
                        link.cut, self._cut = self._cut, None
                link.server.sendall(data)
        except OSError:
            pass
        self._drop(link)

    def _downstream(self, link: _Link) -> None:
        tail = b""
        try:
            while True:
                data = link.server.recv(65536)
                if not data:
                    break
                cut = link.cut
                if cut is None:
                    link.client.sendall(data)
                    continue
                # Look across reads: the needle may straddle two of them.
                seen = tail + data
                found = seen.find(cut.reply)
                if found < 0:
                    link.client.sendall(data)
                    tail = seen[-len(cut.reply) :]
                    continue
                end = found + len(cut.reply) - len(tail)
                link.client.sendall(data[:end])
                cut.fired.set()
                break
        except OSError:
            pass
        self._drop(link)

    def _drop(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)
        _close(link.client)
        _close(link.server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
