"""Real processes on free loopback ports for the benchmarks, the chaos run and the tests.

`RedisServer` is a `redis-server` of our own (never the one on 6379), `RedisClusterServers` three
of them made one Redis Cluster; `ServiceProcess` is one of our services started from its console
script. Both can be used on their own (the suite's
fixtures do), but whatever starts several should start them through a `Harness`: it records
each process the moment it exists and stops every one of them when it closes, on every exit
path: a normal return, an exception (a service that exits or is not ready in time), Ctrl-C,
SIGTERM or SIGHUP to the harness's process.

Not covered: SIGKILL of the harness's own process, which no process can catch. The processes it
started then keep running; each has `HARNESS_VARIABLE` in its environment, naming its harness,
so they can be found.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx2

BIN = Path(sys.executable).parent

# The service credential every process started here gets (one per Python process), and that the
# MCP and admin clients of the bench and the suite send.
SERVICE_TOKEN = f"test-{secrets.token_hex(16)}"
# Every process a harness starts has this variable, set to the harness's run id.
HARNESS_VARIABLE = "WAYPOINT_HARNESS_RUN"
# What a harness stops on, besides Ctrl-C: `kill <pid>` and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    """Ask `check` every 0.1 s until it says yes (True) or `timeout` passes (False). A failed
    check is "not yet", except a `RuntimeError`: the process is gone, and waiting is over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except RuntimeError:
            raise
        except Exception:
            pass
        time.sleep(0.1)
    return False


def _stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: str
    persistent: bool = False
    env: dict[str, str] = field(default_factory=dict)
    # A node of a Redis Cluster (`RedisClusterServers`) has a second port, for the cluster bus
    # (by default the port + 10000, beyond 65535 for most free ports).
    bus_port: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, *, persistent: bool = False, env: Mapping[str, str] | None = None) -> RedisServer:
        """A redis-server of our own; `persistent` keeps an fsync-always append-only file across restarts."""
        server = cls.spawn(persistent=persistent, env=env)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    @classmethod
    def spawn(
        cls, *, persistent: bool = False, env: Mapping[str, str] | None = None, cluster: bool = False
    ) -> RedisServer:
        """Start it without waiting (then `wait_ready`); `cluster` starts a cluster node."""
        port = free_port()
        bus_port = free_port() if cluster else None
        workdir = tempfile.mkdtemp(prefix="waypoint-test-redis-")
        extra = dict(env or {})
        proc = cls._spawn(port, workdir, persistent, extra, bus_port)
        return cls(port, proc, workdir, persistent, extra, bus_port)

    @staticmethod
    def _spawn(
        port: int, workdir: str, persistent: bool, env: Mapping[str, str], bus_port: int | None = None
    ) -> subprocess.Popen[bytes]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed; `make test` installs it (apt-get install redis-server)"
            )
        durability = (
            ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        )
        clustering = (
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(Path(workdir) / "nodes.conf"),
                "--cluster-port",
                str(bus_port),
            ]
            if bus_port is not None
            else []
        )
        return subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *durability,
                *clustering,
                "--dir",
                workdir,
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 10) -> None:
        def pong() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited (code {self.proc.returncode})")
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        if not _poll(pong, timeout):
            raise TimeoutError(f"redis-server on port {self.port} not ready after {timeout}s")

    def kill(self) -> None:
        """Stop abruptly (SIGKILL): what a crashed or unplugged Redis looks like to its clients."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port and data directory."""
        self.proc = self._spawn(self.port, self.workdir, self.persistent, self.env, self.bus_port)
        self.wait_ready()

    def stop(self, grace: float = 10) -> None:
        _stop_process(self.proc, grace)
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class RedisClusterServers:
    """A Redis Cluster of our own: `redis-server --cluster-enabled yes` nodes on free ports, every
    one a master (no replicas), the 16384 slots shared among them by `redis-cli --cluster create`."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """The services' `REDIS_URL` for it (`waypoint_common.connections`)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def create(self, timeout: float = 30) -> None:
        """Join the (ready) nodes into one cluster, and wait until every node says it is ok."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError(
                "redis-cli is not installed; it comes with redis-server (apt-get install redis-server)"
            )
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        made = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{made.stdout.decode()[-2000:]}")

        def state_ok(node: RedisServer) -> bool:
            if node.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {node.port} exited (code {node.proc.returncode})")
            info = subprocess.run(
                [cli, "-p", str(node.port), "cluster", "info"], capture_output=True, timeout=5, check=True
            )
            return b"cluster_state:ok" in info.stdout

        if not _poll(lambda: all(state_ok(node) for node in self.nodes), timeout):
            raise TimeoutError(f"Redis Cluster on {', '.join(addresses)} not ok after {timeout}s")

    def stop(self, grace: float = 10) -> None:
        for node in self.nodes:
            node.stop(grace)


@dataclass
class ServiceProcess:
    """One of our services, started from its console script on a free port."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """The loopback address it listens on (127.0.0.1 unless its `WAYPOINT_HOST` says otherwise)."""
        return self.env.get("WAYPOINT_HOST", "127.0.0.1")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    @classmethod
    def start(
        cls, command: str, env: Mapping[str, str], log_dir: Path, *, port: int | None = None
    ) -> ServiceProcess:
        service = cls.spawn(command, env, log_dir, port=port)
        try:
            service.wait_ready()
        except BaseException:
            service.stop()
            raise
        return service

    @classmethod
    def spawn(
        cls, command: str, env: Mapping[str, str], log_dir: Path, *, port: int | None = None
    ) -> ServiceProcess:
        """Start the process without waiting for it (start several, then `wait_ready` each)."""
        port = port or free_port()
        log_path = log_dir / f"{command}-{port}.log"
        full_env = {
            **os.environ,
            "WAYPOINT_HOST": "127.0.0.1",
            "WAYPOINT_PORT": str(port),
            "WAYPOINT_ENVIRONMENT": "test",
            "WAYPOINT_SERVICE_TOKEN": SERVICE_TOKEN,
            **env,
        }
        with log_path.open("ab") as log:
            proc = subprocess.Popen([str(BIN / command)], env=full_env, stdout=log, stderr=subprocess.STDOUT)
        return cls(command, port, proc, log_path, dict(env))

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            return httpx2.get(f"{self.base_url}/readyz", timeout=1).status_code == 200

        if not _poll(ready, timeout):
            raise TimeoutError(
                f"{self.name} not ready after {timeout}s:\n{self.log_path.read_text()[-3000:]}"
            )

    def stop(self, grace: float = 10) -> None:
        _stop_process(self.proc, grace)

    @property
    def token(self) -> str:
        """The service token this process was started with."""
        return self.env.get("WAYPOINT_SERVICE_TOKEN", SERVICE_TOKEN)

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        response = httpx2.request(
            method,
            f"{self.base_url}{path}",
            json=json,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()


class Interrupted(KeyboardInterrupt):
    """The harness's process was told to stop (SIGINT, SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class Harness:
    """Starts processes and stops every one of them when it closes, however it closes.

    Use it as a context manager. A process is recorded as soon as it is spawned, before
    anything waits for it, so a service that exits or is never ready is stopped with the rest.
    In the main thread, SIGINT, SIGTERM and SIGHUP raise `Interrupted` while the harness is open
    (the previous handlers come back when it closes); a signal that arrives between spawning a
    process and recording it is held until the process is recorded.
    """

    def __init__(self, log_dir: Path, *, ready_timeout: float = 60, grace: float = 10) -> None:
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.run_id = uuid.uuid4().hex
        self.services: list[ServiceProcess] = []
        self.redis_servers: list[RedisServer] = []
        self.others: list[subprocess.Popen[bytes]] = []
        self._previous: dict[int, Any] = {}
        self._holding = False
        self._held: int | None = None
        self._stopped = False

    # -- opening and closing ----------------------------------------------------------------

    def __enter__(self) -> Harness:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            try:
                self.stop()
            except Interrupted:  # came just before `stop` began ignoring signals: stop all the same
                self.stop()
                raise
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopped:
            return  # already stopping everything: a second Ctrl-C must not cut that short
        if self._holding:
            self._held = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def _recording(self) -> Iterator[None]:
        """Hold stop signals while a process is spawned and recorded, then act on them."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._held is not None and not self._stopped:
            signum, self._held = self._held, None
            raise Interrupted(signum)

    @property
    def environment(self) -> dict[str, str]:
        """What every process of this harness has in its environment, besides the caller's."""
        return {HARNESS_VARIABLE: self.run_id}

    # -- starting ---------------------------------------------------------------------------

    def redis(self, *, persistent: bool = False) -> RedisServer:
        """A redis-server of this harness, ready."""
        self._check_open()
        with self._recording():
            server = RedisServer.spawn(persistent=persistent, env=self.environment)
            self.redis_servers.append(server)
        server.wait_ready()
        return server

    def redis_cluster(self, masters: int = 3) -> RedisClusterServers:
        """A Redis Cluster of this harness (`masters` nodes, no replicas), ready: `cluster_state:ok`
        on every node."""
        self._check_open()
        nodes: list[RedisServer] = []
        for _ in range(masters):
            with self._recording():
                node = RedisServer.spawn(env=self.environment, cluster=True)
                self.redis_servers.append(node)
            nodes.append(node)
        for node in nodes:
            node.wait_ready()
        cluster = RedisClusterServers(nodes)
        cluster.create()
        return cluster

    def spawn(self, command: str, env: Mapping[str, str], *, port: int | None = None) -> ServiceProcess:
        """A service of this harness, not waited for (spawn several, then `wait_ready`)."""
        self._check_open()
        with self._recording():
            service = ServiceProcess.spawn(command, {**self.environment, **env}, self.log_dir, port=port)
            self.services.append(service)
        return service

    def start(self, command: str, env: Mapping[str, str], *, port: int | None = None) -> ServiceProcess:
        """A service of this harness, ready."""
        service = self.spawn(command, env, port=port)
        self.wait_ready(service)
        return service

    def popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Any other process of this harness (its output goes to this terminal)."""
        self._check_open()
        with self._recording():
            proc = subprocess.Popen(argv, env={**os.environ, **self.environment})
            self.others.append(proc)
        return proc

    def wait_ready(self, *services: ServiceProcess) -> None:
        """Wait for each, within the harness's readiness time-out each."""
        for service in services:
            service.wait_ready(self.ready_timeout)

    def _check_open(self) -> None:
        if self._stopped:
            raise RuntimeError("this harness has stopped; make a new one")

    # -- stopping ---------------------------------------------------------------------------

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every process this harness started (a restarted Redis counts once, as it is now)."""
        return [s.proc for s in self.services] + self.others + [r.proc for r in self.redis_servers]

    def stop(self) -> None:
        """Stop every process: the services first (all told at once, the latest started first),
        Redis last; SIGKILL whatever is still running after the grace period. Idempotent."""
        self._stopped = True
        self._stop_all([*reversed(self.others), *(s.proc for s in reversed(self.services))])
        self._stop_all([r.proc for r in reversed(self.redis_servers)])
        for server in self.redis_servers:
            shutil.rmtree(server.workdir, ignore_errors=True)

    def _stop_all(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + self.grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
