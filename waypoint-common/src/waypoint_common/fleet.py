"""The local fleet: the same services as `compose.yaml`, as processes on 127.0.0.1.

`make run` calls this. It starts a `redis-server` of its own (unless `REDIS_URL` names one),
the four tool servers and the orchestrator, waits until each answers `/readyz`, prints their
URLs and stops them all on Ctrl-C (SIGINT) or SIGTERM.

Ports come from the environment: `WAYPOINT_PORT` (orchestrator, 8000), `MCP_FLIGHTS_PORT`
(8101), `MCP_HOTELS_PORT` (8102), `MCP_WEATHER_PORT` (8103), `MCP_RESTAURANTS_PORT` (8104)
and `REDIS_PORT` (6380; 6379 is left alone, it is usually someone else's Redis).

Every service gets the service token (the credential tool servers require of the orchestrator)
as a file, `WAYPOINT_SERVICE_TOKEN_FILE`, as compose does with its secret: the caller's
`WAYPOINT_SERVICE_TOKEN` if set, otherwise a random one made for this run. The file is private
to the user (0600 in a 0700 directory) and removed when the fleet stops. Once the fleet is
ready, an API key for the tenant `dev` is made with `waypoint-admin` and printed with the URLs;
it is also left, private to the user, where the `waypoint` command finds it (`devkey.py`), until
the fleet stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from waypoint_common import devkey

HOST = "127.0.0.1"
DEV_TENANT = "dev"
TOKEN_VARIABLE = "WAYPOINT_SERVICE_TOKEN"
TOKEN_FILE_VARIABLE = "WAYPOINT_SERVICE_TOKEN_FILE"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service of the fleet: its console script, and how its port is chosen locally."""

    name: str
    command: str
    port_variable: str
    default_port: int
    tool_server: bool


FLEET: tuple[ServiceSpec, ...] = (
    ServiceSpec("mcp-flights", "mcp-flights", "MCP_FLIGHTS_PORT", 8101, True),
    ServiceSpec("mcp-hotels", "mcp-hotels", "MCP_HOTELS_PORT", 8102, True),
    ServiceSpec("mcp-weather", "mcp-weather", "MCP_WEATHER_PORT", 8103, True),
    ServiceSpec("mcp-restaurants", "mcp-restaurants", "MCP_RESTAURANTS_PORT", 8104, True),
    ServiceSpec("orchestrator", "waypoint-orchestrator", "WAYPOINT_PORT", 8000, False),
)
TOOL_SERVERS = tuple(s for s in FLEET if s.tool_server)


def url_variable(spec: ServiceSpec) -> str:
    """The orchestrator's variable holding a tool server's MCP URL (`MCP_FLIGHTS_URL`)."""
    return spec.name.upper().replace("-", "_") + "_URL"


def service_environment(
    spec: ServiceSpec,
    *,
    host: str,
    port: int,
    redis_url: str,
    mcp_urls: Mapping[str, str],
    otel_endpoint: str,
    token_file: str,
) -> dict[str, str]:
    """The environment variables a service gets; compose sets exactly the same names."""
    env = {
        "WAYPOINT_HOST": host,
        "WAYPOINT_PORT": str(port),
        "WAYPOINT_ENVIRONMENT": "development",
        "WAYPOINT_LOG_LEVEL": "INFO",
        "REDIS_URL": redis_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otel_endpoint,
        TOKEN_FILE_VARIABLE: token_file,
    }
    if spec.tool_server:
        env["WAYPOINT_FAULTS"] = ""
        env["WAYPOINT_ALLOWED_HOSTS"] = ""
    else:
        env.update({url_variable(s): mcp_urls[s.name] for s in TOOL_SERVERS})
        env["JAEGER_UI_URL"] = ""
        # The optional language model: the caller's settings, or none.
        for name in ("WAYPOINT_LLM_BASE_URL", "WAYPOINT_LLM_MODEL", "WAYPOINT_LLM_API_KEY"):
            env[name] = ""
    return env


def create_api_key(
    bin_dir: Path, redis_url: str, tenant: str, *options: str, environ: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """`waypoint-admin keys create --tenant <tenant> <options>` on that Redis: the key (shown
    once), and what was stored about it (its id, scopes, limits)."""
    made = subprocess.run(
        [str(bin_dir / "waypoint-admin"), "keys", "create", "--tenant", tenant, *options],
        env={**(os.environ if environ is None else environ), "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"waypoint-admin could not make an API key: {made.stderr.strip()}")
    stored: dict[str, Any] = json.loads(made.stderr.strip().splitlines()[-1])
    return made.stdout.strip(), stored


def port_of(spec: ServiceSpec, environ: Mapping[str, str]) -> int:
    return int(environ.get(spec.port_variable, spec.default_port))


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx2.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with code {proc.returncode} before it was ready")
            with contextlib.suppress(httpx2.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


class Fleet:
    """Starts and stops the processes; a context manager so nothing outlives it."""

    def __init__(self, environ: Mapping[str, str], bin_dir: Path, log_dir: Path | None) -> None:
        self._environ = dict(environ)
        # The services get the token as a file only (see `_token_file`), never in their environment.
        self._token = self._environ.pop(TOKEN_VARIABLE, "") or secrets.token_hex(32)
        self._environ.pop(TOKEN_FILE_VARIABLE, None)
        self._bin = bin_dir
        self._log_dir = log_dir
        self._secrets: Path | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self.token_file: Path | None = None
        self.api_key: str | None = None
        self.api_key_file: Path | None = None
        self._api_port: int | None = None

    def _token_file(self) -> Path:
        """The service token in a file only this user can read."""
        self._secrets = Path(tempfile.mkdtemp(prefix="waypoint-secrets-"))  # mode 0700
        path = self._secrets / "service-token"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(self._token)
        return path

    def _spawn(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = None
        if self._log_dir is not None:
            out = (self._log_dir / f"{name}.log").open("ab")
        # Own session: Ctrl-C reaches only this launcher, which then stops the fleet in order.
        proc = subprocess.Popen(
            argv,
            env={**self._environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def _redis(self) -> str:
        if self._environ.get("REDIS_URL"):
            return self._environ["REDIS_URL"]
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError(
                "redis-server not found: install it (apt-get install redis-server) or set REDIS_URL"
            )
        port = int(self._environ.get("REDIS_PORT", "6380"))
        data = tempfile.mkdtemp(prefix="waypoint-redis-")
        proc = self._spawn(
            "redis",
            [server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", data],
        )
        url = f"redis://{HOST}:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {port} exited (is the port taken?)")
            ping = (
                subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
                )
                if shutil.which("redis-cli")
                else None
            )
            if ping is None or ping.stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        self.urls["redis"] = url
        return url

    def start(self, ready_timeout: float = 60.0) -> None:
        redis_url = self._redis()
        self.token_file = self._token_file()
        otel = self._environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        ports = {s.name: port_of(s, self._environ) for s in FLEET}
        mcp_urls = {s.name: f"http://{HOST}:{ports[s.name]}/mcp" for s in TOOL_SERVERS}
        for spec in FLEET:
            env = service_environment(
                spec,
                host=HOST,
                port=ports[spec.name],
                redis_url=redis_url,
                mcp_urls=mcp_urls,
                otel_endpoint=otel,
                token_file=str(self.token_file),
            )
            # Optional settings left empty here take the caller's value, or the service default.
            env = {k: v or self._environ.get(k, "") for k, v in env.items()}
            env = {k: v for k, v in env.items() if v}
            self._spawn(spec.name, [str(self._bin / spec.command)], env)
        for spec in FLEET:
            base = f"http://{HOST}:{ports[spec.name]}"
            _wait_ready(f"{base}/readyz", self.procs[spec.name], ready_timeout)
            self.urls[spec.name] = f"{base}/mcp" if spec.tool_server else base
        self.api_key = self._development_key(redis_url)
        self._api_port = ports["orchestrator"]
        try:
            self.api_key_file = devkey.write_key(self._api_port, self.api_key)
        except OSError as exc:
            print(f"waypoint-fleet: the API key is not saved for `waypoint` ({exc})", file=sys.stderr)

    def _development_key(self, redis_url: str) -> str:
        """An API key for this run (tenant `dev`, every scope)."""
        key, _ = create_api_key(self._bin, redis_url, DEV_TENANT, "--name", "make run", environ=self._environ)
        return key

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM everything (the orchestrator first, Redis last), then SIGKILL what remains.

        Further Ctrl-C and SIGTERM are ignored meanwhile: `uv run` forwards the terminal's
        SIGINT to us, which a process group already delivered, and a second interrupt in the
        middle of stopping would leave services behind.
        """
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        order = [n for n in reversed(list(self.procs)) if n != "redis"] + (
            ["redis"] if "redis" in self.procs else []
        )
        for name in order:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._secrets is not None:
            shutil.rmtree(self._secrets, ignore_errors=True)
        if self.api_key_file is not None and self._api_port is not None and self.api_key is not None:
            devkey.remove_key(self._api_port, self.api_key)

    def watch(self) -> str:
        """Block until a service exits; returns its name."""
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    return name
            time.sleep(0.5)


@contextlib.contextmanager
def running_fleet(environ: Mapping[str, str], bin_dir: Path, log_dir: Path | None = None) -> Iterator[Fleet]:
    fleet = Fleet(environ, bin_dir, log_dir)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


def _waypoint_command(bin_dir: Path, api: str, arguments: str) -> str:
    """A `waypoint` command line that works from here: the command's path (relative when under
    the current directory), and `--api` when the orchestrator is not on its default port."""
    path = bin_dir / "waypoint"
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    orchestrator = next(s for s in FLEET if s.name == "orchestrator")
    default = f"http://{HOST}:{orchestrator.default_port}"
    return f"{path} {arguments}" + ("" if api == default else f" --api {api}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="waypoint-fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="write each service's log to DIR/<service>.log instead of this terminal",
    )
    args = parser.parse_args(argv)
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Explicitly, because a process started in the background by a shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    try:
        with running_fleet(os.environ, bin_dir, args.log_dir) as fleet:
            print("\nWaypoint fleet is ready:", flush=True)
            for name, url in fleet.urls.items():
                print(f"  {name:<16} {url}", flush=True)
            print(
                f"  {'service token':<16} {fleet.token_file} (send it as a Bearer token to /admin)",
                flush=True,
            )
            print(f"  {'api key':<16} {fleet.api_key} (tenant {DEV_TENANT}, every scope)", flush=True)
            query = "4-day hiking trip to Patagonia from Seattle in March, under $3000 for two"
            example = json.dumps({"query": query})
            api = fleet.urls["orchestrator"]
            print(
                f"\nTry:\n  {_waypoint_command(bin_dir, api, f'plan {shlex.quote(query)}')}"
                f"\n  curl -s {api}/v1/trips -H 'Authorization: Bearer "
                f"{fleet.api_key}' \\\n       -H 'content-type: application/json' -H 'Prefer: wait=30' "
                f"-d '{example}'"
                f"\n  open {api}/ in a browser (the web page; paste the api key above)\n",
                flush=True,
            )
            print("Press Ctrl-C to stop.", flush=True)
            gone = fleet.watch()
            print(f"{gone} exited (code {fleet.procs[gone].returncode}); stopping the fleet", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping the fleet", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"waypoint-fleet: {exc}", file=sys.stderr)
        return 1
