"""Where a tool server's replicas are: every address its name resolves to.

In compose, a scaled service's name resolves to every replica's address; in Kubernetes, a
headless Service's name does the same. `Resolver` asks the system resolver (getaddrinfo), unless
a hosts file is configured (`WAYPOINT_TOOL_HOSTS_FILE`, lines of `address name...` as in
/etc/hosts): then the file is read at every resolution, so replicas can be added or removed
without DNS (and tests can move them on loopback). An address literal stands for itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path


class Resolver:
    def __init__(self, hosts_file: Path | None = None) -> None:
        self.hosts_file = hosts_file

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of `host`, in a stable order; raises `OSError` when there is none."""
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if self.hosts_file is not None:
            found = self._from_file(host)
            if found:
                return found
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = sorted({str(info[4][0]) for info in infos})
        if not addresses:
            raise OSError(f"no address for {host}")
        return addresses

    def _from_file(self, host: str) -> list[str]:
        assert self.hosts_file is not None
        found: list[str] = []
        for line in self.hosts_file.read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and host in fields[1:] and fields[0] not in found:
                found.append(fields[0])
        return found
