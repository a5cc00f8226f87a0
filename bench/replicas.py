"""`make bench`: searches per second through the orchestrator's balancer, 1 and 2 replicas.

Everything runs on 127.0.0.1 (the replicas on 127.0.0.2 and 127.0.0.3, one name for both, as
in `tests/test_balancing.py`) and stops by itself: a redis-server, the flights replicas, and the
orchestrator's own `ToolClient` (resolution, one connection per replica, least calls in flight)
driving `search_flights` at concurrency 32.

Two settings:

* **tool server the bottleneck**: every replica gets the fault plan's `service_ms` (each call
  holds the process's one service slot for that long, so one process serves at most
  1000/`service_ms` calls a second, like a server in front of a saturated backend). What a
  second replica adds is then what the balancer makes of it; target: 2 replicas >= 1.7 times one.
* **CPU bound** (no injected service time): on a 2-core machine the client and every replica
  share the same two cores, so a second replica cannot add much; reported, with no target.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from bench.harness import SERVICE_TOKEN, Harness, Interrupted, free_port
from bench.mcp_latency import measure
from waypoint_orchestrator.replicas import Resolver
from waypoint_orchestrator.toolclient import ToolClient

ADDRESSES = ("127.0.0.2", "127.0.0.3")
CONCURRENCY = 32
TARGET = 1.7


@dataclass
class Row:
    setting: str
    replicas: int
    per_second: float
    p50_ms: float
    p99_ms: float
    calls_per_replica: list[int]


async def drive(
    port: int, hosts_file: Path, calls: int, server_pid: int
) -> tuple[float, float, float, list[int]]:
    """Searches at concurrency 32 through one balancing client: calls/s, p50, p99, spread."""
    client = ToolClient(
        "mcp-flights",
        f"http://mcp-flights:{port}/mcp",
        token=SecretStr(SERVICE_TOKEN),
        resolver=Resolver(hosts_file),
    )
    today = dt.datetime.now(dt.UTC).date()
    days = iter(range(10**9))

    async def search() -> None:
        # Dates cycle over a year, so the servers' per-day offer cache is mostly warm in both runs.
        day = today + dt.timedelta(days=20 + next(days) % 300)
        args = {"origin": "SEA", "destination": "SFO", "depart_date": str(day), "passengers": 1}
        await client.call("search_flights", args)

    try:
        # `server_pid` (the first replica) is only for measure's CPU figure, which is not reported here.
        figures = await measure("search_flights", search, CONCURRENCY, calls, server_pid, warmup=CONCURRENCY)
        spread = sorted(client.replica_calls().values(), reverse=True)
    finally:
        await client.aclose()
    return figures.per_second, figures.p50_ms, figures.p99_ms, spread


def run_setting(harness: Harness, redis_url: str, setting: str, service_ms: float, calls: int) -> list[Row]:
    rows: list[Row] = []
    for count in (1, 2):
        port = free_port()
        addresses = ADDRESSES[:count]
        allowed = ",".join([f"mcp-flights:{port}", *(f"{a}:{port}" for a in addresses)])
        env = {"REDIS_URL": redis_url, "WAYPOINT_ALLOWED_HOSTS": allowed, "WAYPOINT_LOG_LEVEL": "WARNING"}
        if service_ms:
            env["WAYPOINT_FAULTS"] = json.dumps({"search_flights": {"service_ms": service_ms}})
        replicas = [harness.spawn("mcp-flights", {**env, "WAYPOINT_HOST": a}, port=port) for a in addresses]
        harness.wait_ready(*replicas)
        with tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False) as hosts:
            hosts.write("".join(f"{a} mcp-flights\n" for a in addresses))
        try:
            per_second, p50, p99, spread = asyncio.run(
                drive(port, Path(hosts.name), calls, replicas[0].proc.pid)
            )
        finally:
            for replica in replicas:
                replica.stop()
            Path(hosts.name).unlink(missing_ok=True)
        rows.append(Row(setting, count, per_second, p50, p99, spread))
    return rows


def report(rows: list[Row], service_ms: float) -> dict[str, object]:
    print(f"\n{'setting':<34}{'replicas':>9}{'searches/s':>12}{'p50 ms':>9}{'p99 ms':>9}  calls per replica")
    for r in rows:
        print(
            f"{r.setting:<34}{r.replicas:>9}{r.per_second:>12.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}"
            f"  {r.calls_per_replica}"
        )
    by = {(r.setting, r.replicas): r for r in rows}
    bottleneck = f"tool server the bottleneck ({service_ms:g} ms)"
    ratio = by[(bottleneck, 2)].per_second / by[(bottleneck, 1)].per_second
    cpu = by[("CPU bound", 2)].per_second / by[("CPU bound", 1)].per_second
    verdict = "MET" if ratio >= TARGET else "MISSED"
    print(f"\n2 replicas / 1, tool server the bottleneck: {ratio:.2f}x (target >= {TARGET}x) {verdict}")
    print(f"2 replicas / 1, CPU bound: {cpu:.2f}x (no target: client and replicas share the cores)")
    return {
        "rows": [asdict(r) for r in rows],
        "replica_ratio_bottleneck": ratio,
        "replica_ratio_cpu_bound": cpu,
        "target": TARGET,
        "met": ratio >= TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=600, help="measured searches per row (default 600)")
    parser.add_argument("--service-ms", type=float, default=25.0, help="injected service time (default 25)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="waypoint-bench-replicas-"))
    try:
        with Harness(log_dir) as harness:
            redis = harness.redis()
            rows = run_setting(
                harness,
                redis.url,
                f"tool server the bottleneck ({args.service_ms:g} ms)",
                args.service_ms,
                args.calls,
            )
            rows += run_setting(harness, redis.url, "CPU bound", 0.0, args.calls)
    except Interrupted as stopped:
        print(f"\n{stopped}", file=sys.stderr)
        return 128 + stopped.signum
    figures = report(rows, args.service_ms)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
