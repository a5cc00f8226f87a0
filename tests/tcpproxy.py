"""TCP proxies on loopback that break connections on purpose, for the tests.

`LoopbackProxy` is the plumbing every such proxy shares: a listener on a free port, one link per
accepted connection (client and server sockets, a thread each way), dropping a link or all of
them, closing. A proxy says what flows through a link (`_upstream`, `_downstream`) and whether
a new connection is refused (`_refuses`).

`CuttingProxy`, in front of an HTTP server, cuts a connection in the middle of a reply. A test
arms a one-shot cut with two byte strings: the next request holding `request` gets its reply
forwarded up to and including the first `reply` in it, and then both sides of that connection
are closed, as a dropped network link would leave them (the client has part of the reply; the
server had sent all of it). Every request that passes is recorded, so a test can see what a
client sent (its headers) before and after the cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tests.support import free_port


@dataclass(eq=False)
class Link:
    """One proxied connection: the client's socket and ours to the server."""

    client: socket.socket
    server: socket.socket


L = TypeVar("L", bound=Link)


class LoopbackProxy(ABC, Generic[L]):
    """A listener on 127.0.0.1 forwarding each connection to `target_port` through a link."""

    def __init__(self, target_port: int, *, backlog: int = 128, connect_timeout: float = 5.0) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._connect_timeout = connect_timeout
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=backlog)
        self._lock = threading.Lock()
        self._links: set[L] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._cut_all()

    # -- what a proxy decides ---------------------------------------------------------------

    def _refuses(self) -> bool:
        """True to close a new connection as soon as it is accepted."""
        return False

    @abstractmethod
    def _link(self, client: socket.socket, server: socket.socket) -> L:
        """The link for a new connection."""

    @abstractmethod
    def _upstream(self, link: L) -> None:
        """Client to server, until either side closes."""

    @abstractmethod
    def _downstream(self, link: L) -> None:
        """Server to client, until either side closes."""

    # -- plumbing ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refuses():
                _close(client)
                continue
            try:
                server = socket.create_connection(
                    ("127.0.0.1", self.target_port), timeout=self._connect_timeout
                )
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            link = self._link(client, server)
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._upstream, args=(link,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link,), daemon=True).start()

    def _cut_all(self) -> None:
        with self._lock:
            links = list(self._links)
        for link in links:
            self._drop(link)

    def _drop(self, link: L) -> None:
        with self._lock:
            self._links.discard(link)
        _close(link.client)
        _close(link.server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class _Cut:
    request: bytes
    reply: bytes
    fired: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _CutLink(Link):
    cut: _Cut | None = None  # armed for the reply now on its way


class CuttingProxy(LoopbackProxy[_CutLink]):
    def __init__(self, target_port: int) -> None:
        self._cut: _Cut | None = None
        self._requests: list[bytes] = []
        super().__init__(target_port)

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

    def _link(self, client: socket.socket, server: socket.socket) -> _CutLink:
        return _CutLink(client, server)

    def _upstream(self, link: _CutLink) -> None:
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

    def _downstream(self, link: _CutLink) -> None:
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
