"""`make bench-trips` (and the last part of `make bench`): whole trips through one orchestrator.

Everything runs on 127.0.0.1 and stops by itself (`bench.harness`): two fleets of our own, each a
redis-server, the four tool servers and one orchestrator process (`WAYPOINT_WORKERS=32`):

* **hardened**, the defaults: budgets charged in Redis, Idempotency-Key records, breakers, and
  traces and metrics exported over OTLP/HTTP by every service to a receiver of ours
  (`bench.otlp_sink`, a process of its own);
* **switched off**: `WAYPOINT_BUDGETS_ENABLED`, `WAYPOINT_IDEMPOTENCY_KEYS_ENABLED` and
  `WAYPOINT_BREAKERS_ENABLED` false (settings for measuring only) and no OTLP endpoint; or only
  those named with `--switch-off` (tracing, budgets, idempotency, breakers), to weigh each.

Every trip is one free-text request (a 4-day hiking trip from Seattle to Patagonia with one fancy
dinner, for two), its date moved a day per trip, POSTed with an Idempotency-Key and
`Prefer: wait=60`. **Plan time** is the trip's own: `updated_at - created_at` of the settled
trip, i.e. from accepted to planned, both stamped by the orchestrator; the client's
POST-to-answer time is reported beside it. A trip counts as planned when its plan ran to its
end (`planned`, `partial` or `over_budget`).

1. *Critical path*: each search tool gets a fixed `latency_ms` (fault injector, set through
   `/admin/faults`); trips one at a time on the hardened fleet. The critical path is computed
   from the trip's own plan (its steps and `depends_on`, each step's calls in sequence).
2. *Throughput*: hardened, no injected latency, concurrency 1, 8 and 32 (32 in rounds, below).
3. *CPU per trip*: every process's CPU time (user + system, its own counters through psutil)
   before and after the concurrency-32 rounds, per planned trip; against the CPU this process
   spends making the same MCP calls (same tools, same arguments, rebuilt from each trip's
   resolved request with the orchestrator's own agents) with a plain MCP client, 32 trips' calls
   at a time, on uvloop as the orchestrator's calls are (uvicorn's loop; so is the load generator).
4. *Cost of hardening*: concurrency-32 rounds alternating between the two fleets.
5. *Replicas*: read from `bench/replicas.py`'s JSON (`make bench` runs it first), not measured again.

Prints a table with each figure, its target and MET/MISSED, and writes the figures as JSON and
a plot of the plan-time distributions as PNG (under `.run/bench/` by default, git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import psutil
import redis
import uvloop
from mcp import Client

from bench.harness import BIN, Harness, Interrupted, ServiceProcess, free_port, wait_until
from bench.mcp_latency import OWNER, mcp_client
from waypoint_common.fleet import TOOL_SERVERS, create_api_key, url_variable
from waypoint_orchestrator.agents import DiningAgent, FlightsAgent, HotelsAgent, WeatherAgent
from waypoint_orchestrator.agents.base import RetrySettings
from waypoint_orchestrator.models import ResolvedTrip
from waypoint_orchestrator.planner import shape
from waypoint_orchestrator.toolclient import ToolClient

RESULTS = Path(".run/bench")
# The injected latency of each search tool (ms), and the tool server each one is on.
LATENCY_MS = {
    "search_flights": 200.0,
    "search_hotels": 150.0,
    "search_restaurants": 100.0,
    "get_forecast": 50.0,
}
SERVER_OF = {
    "search_flights": "mcp-flights",
    "search_hotels": "mcp-hotels",
    "search_restaurants": "mcp-restaurants",
    "get_forecast": "mcp-weather",
}
PLANNED = frozenset({"planned", "partial", "over_budget"})
# What the switched-off fleet switches off (`--switch-off`, all four by default).
SWITCHES = {
    "tracing": {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    "budgets": {"WAYPOINT_BUDGETS_ENABLED": "false"},
    "idempotency": {"WAYPOINT_IDEMPOTENCY_KEYS_ENABLED": "false"},
    "breakers": {"WAYPOINT_BREAKERS_ENABLED": "false"},
}
ROUND_CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    at_most: float | None = None
    at_least: float | None = None

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        if self.at_most is not None:
            return value <= self.at_most
        assert self.at_least is not None
        return value >= self.at_least

    @property
    def text(self) -> str:
        return f"<= {self.at_most:g}" if self.at_most is not None else f">= {self.at_least:g}"


TARGETS = (
    Target("plan_p50_over_critical_path", "trip plan p50 / critical path", at_most=1.15),
    Target("plan_p99_over_critical_path", "trip plan p99 / critical path", at_most=1.5),
    Target(
        "trips_per_second_c32", "planned trips/s, one orchestrator, c=32, no injected latency", at_least=40
    ),
    Target(
        "orchestrator_cpu_over_bare_calls",
        "orchestrator CPU per planned trip / its bare MCP calls",
        at_most=1.3,
    ),
    Target("hardening_on_over_off", "throughput hardening on / off (c=32)", at_least=0.85),
    Target("replicas_2_over_1", "2 tool-server processes / 1, tool server the bottleneck", at_least=1.7),
)


def progress(message: str) -> None:
    print(f"bench.trips: {message}", file=sys.stderr, flush=True)


def percentile(values: Iterable[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..1) of the values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def trip_body(n: int, today: dt.date) -> dict[str, Any]:
    start = today + dt.timedelta(days=30 + n % 240)
    return {
        "query": f"4-day hiking trip to Patagonia from Seattle on {start:%B} {start.day} "
        "with one fancy dinner, under $8000 for two"
    }


# -- the fleets ------------------------------------------------------------------------------------


@dataclass
class Fleet:
    name: str
    tools: dict[str, ServiceProcess]
    orchestrator: ServiceProcess
    redis_pid: int
    redis_url: str
    api_key: str = ""
    extra: dict[str, int] = field(default_factory=dict)  # other processes whose CPU counts (the sink)

    def pids(self) -> dict[str, int]:
        named = {"orchestrator": self.orchestrator.proc.pid, "redis-server": self.redis_pid}
        return named | {name: s.proc.pid for name, s in self.tools.items()} | self.extra


def switched_off(names: Iterable[str]) -> dict[str, str]:
    """The environment of the switched-off fleet: the named switches off, the others as hardened."""
    return {k: v for name in names for k, v in SWITCHES[name].items()}


def start_fleets(harness: Harness, workers: int, off: Mapping[str, str]) -> tuple[Fleet, Fleet, str]:
    """The hardened fleet and the switched-off one, ready, and the OTLP receiver's stats URL."""
    sink_port = free_port()
    sink = harness.popen([str(BIN / "python"), "-m", "bench.otlp_sink", "--port", str(sink_port)])
    sink_url = f"http://127.0.0.1:{sink_port}"
    wait_until(lambda: httpx2.get(f"{sink_url}/stats").status_code == 200, 20, "OTLP receiver")
    fleets: list[Fleet] = []
    for name, extra_env in (
        ("hardened", {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url}),
        ("switched off", {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, **off}),
    ):
        store = harness.redis()
        env = {"REDIS_URL": store.url, "WAYPOINT_LOG_LEVEL": "WARNING", **extra_env}
        tools = {spec.name: harness.spawn(spec.command, env) for spec in TOOL_SERVERS}
        harness.wait_ready(*tools.values())
        key, _ = create_api_key(
            BIN,
            store.url,
            "bench",
            *("--name", "bench-trips", "--requests-per-minute", "100000"),
            *("--concurrent-waits", "10000", "--daily-spend-usd", "10000000"),
        )
        orchestrator_env = {
            **env,
            **{url_variable(spec): tools[spec.name].mcp_url for spec in TOOL_SERVERS},
            "WAYPOINT_WORKERS": str(workers),
        }
        orchestrator = harness.start("waypoint-orchestrator", orchestrator_env)
        fleet = Fleet(name, tools, orchestrator, store.proc.pid, store.url, key)
        if name == "hardened":
            fleet.extra["otlp receiver"] = sink.pid
        fleets.append(fleet)
    return fleets[0], fleets[1], sink_url


def cpu_seconds(pids: Mapping[str, int]) -> dict[str, float]:
    """User + system CPU time of each process so far (its own counters); `<name> system` is the
    system (kernel) part."""
    times = {name: psutil.Process(pid).cpu_times() for name, pid in pids.items()}
    return {name: t.user + t.system for name, t in times.items()} | {
        f"{name} system": t.system for name, t in times.items()
    }


def redis_commands(url: str) -> Counter[str]:
    """Commands the Redis at `url` has served so far, by command (`INFO commandstats`)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        stats: dict[str, Any] = client.info("commandstats")
    finally:
        client.close()
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def own_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


# -- driving trips ---------------------------------------------------------------------------------


@dataclass
class Sample:
    plan_ms: float  # accepted -> planned, the trip's own timestamps
    client_ms: float  # POST sent -> answer read, at the client
    status: str
    trip: dict[str, Any] | None = None  # kept when asked for (critical path, bare calls)


@dataclass
class Trial:
    label: str
    fleet: str
    concurrency: int
    samples: list[Sample]
    seconds: float
    cpu: dict[str, float]  # seconds, per process, over the trial
    client_cpu: float  # this process (the load generator)
    redis_commands: Counter[str] = field(default_factory=Counter)  # served over the trial

    @property
    def planned(self) -> list[Sample]:
        return [s for s in self.samples if s.status in PLANNED]

    def summary(self) -> dict[str, Any]:
        planned = self.planned
        plan = [s.plan_ms for s in planned]
        client = [s.client_ms for s in planned]
        return {
            "label": self.label,
            "fleet": self.fleet,
            "concurrency": self.concurrency,
            "trips": len(self.samples),
            "planned": len(planned),
            "statuses": dict(Counter(s.status for s in self.samples)),
            "seconds": round(self.seconds, 3),
            "per_second": round(len(planned) / self.seconds, 2) if self.seconds else None,
            "plan_p50_ms": round(statistics.median(plan), 1) if plan else None,
            "plan_p99_ms": round(percentile(plan, 0.99), 1) if plan else None,
            "client_p50_ms": round(statistics.median(client), 1) if client else None,
            "client_p99_ms": round(percentile(client, 0.99), 1) if client else None,
            "cpu_seconds": {k: round(v, 3) for k, v in self.cpu.items()},
            "load_generator_cpu_seconds": round(self.client_cpu, 3),
        }


def _ms_between(start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds() * 1000


async def drive(
    fleet: Fleet,
    label: str,
    concurrency: int,
    total: int,
    first: int,
    *,
    keep: bool = False,
    measure_cpu: bool = True,
) -> Trial:
    """`total` trips at `concurrency`, each POSTed with `Prefer: wait`; trips numbered from `first`."""
    today = dt.datetime.now(dt.UTC).date()
    tickets = itertools.count(first)
    samples: list[Sample] = []
    headers = {"Authorization": f"Bearer {fleet.api_key}", "Prefer": "wait=60"}
    limits = httpx2.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)

    async def worker(client: httpx2.AsyncClient) -> None:
        while (n := next(tickets)) < first + total:
            started = time.perf_counter()
            response = await client.post(
                "/v1/trips",
                json=trip_body(n, today),
                headers={**headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
            )
            client_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"trip {n}: {response.status_code} {response.text[:300]}")
            trip = response.json()
            plan_ms = _ms_between(trip["created_at"], trip["updated_at"])
            samples.append(Sample(plan_ms, client_ms, trip["status"], trip if keep else None))

    pids = fleet.pids()
    async with httpx2.AsyncClient(base_url=fleet.orchestrator.base_url, timeout=90, limits=limits) as client:
        commands = redis_commands(fleet.redis_url) if measure_cpu else Counter()
        before, client_before = (cpu_seconds(pids) if measure_cpu else {}), own_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        client_cpu = own_cpu() - client_before
        after = cpu_seconds(pids) if measure_cpu else {}
        if measure_cpu:
            commands = redis_commands(fleet.redis_url) - commands
    cpu = {name: after[name] - before[name] for name in after}
    return Trial(label, fleet.name, concurrency, samples, seconds, cpu, client_cpu, commands)


# -- the critical path -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    step: str
    calls: int
    ms: float


def critical_path(steps: list[dict[str, Any]], latency: Mapping[str, float]) -> tuple[float, list[Hop]]:
    """The longest chain of the plan's DAG (`depends_on`), each step costing its calls (made one
    after another) times its tool's latency; steps that call no tool cost nothing."""
    by_id = {s["id"]: s for s in steps}
    done: dict[str, tuple[float, list[Hop]]] = {}

    def finish(step_id: str) -> tuple[float, list[Hop]]:
        if step_id not in done:
            step = by_id[step_id]
            calls = max(1, int(step["attempts"])) if step["action"] in latency else 0
            own = calls * latency.get(step["action"], 0.0)
            before = max((finish(d) for d in step["depends_on"]), key=lambda f: f[0], default=(0.0, []))
            done[step_id] = (before[0] + own, [*before[1], Hop(step_id, calls, own)])
        return done[step_id]

    # The longest; of equally long ones, the one through the most steps (to the plan's end).
    return max((finish(step_id) for step_id in by_id), key=lambda f: (f[0], len(f[1])))


def breakdown(trips: list[dict[str, Any]]) -> dict[str, float]:
    """Where a trip's plan time goes, from its own timestamps (medians over the trips, ms): before
    the searches start, the searches (to the last one finished), the choice and the itinerary,
    and settling."""
    parts: dict[str, list[float]] = {}
    for trip in trips:
        steps = {s["id"]: s for s in trip["steps"] if s["started_at"] and s["finished_at"]}
        searches = [s for s in steps.values() if s["action"] in LATENCY_MS]
        if not searches or "summarize" not in steps:
            continue
        first = min(s["started_at"] for s in searches)
        last = max(s["finished_at"] for s in searches)
        marks = {
            "accepted -> first search started (queue, routing, gate, plan)": (trip["created_at"], first),
            "first search started -> last search finished": (first, last),
            "last search finished -> itinerary written (choose, summarize)": (
                last,
                steps["summarize"]["finished_at"],
            ),
            "itinerary written -> planned": (steps["summarize"]["finished_at"], trip["updated_at"]),
        }
        for label, (start, end) in marks.items():
            parts.setdefault(label, []).append(_ms_between(start, end))
    return {label: round(statistics.median(values), 1) for label, values in parts.items()}


def set_latency(fleet: Fleet, on: bool) -> None:
    for tool, server in SERVER_OF.items():
        plan = {tool: {"latency_ms": LATENCY_MS[tool]}} if on else {}
        fleet.tools[server].admin("PUT", "/admin/faults", plan)


# -- the bare MCP calls ----------------------------------------------------------------------------


class CallsOfATrip:
    """The MCP calls a trip's searches made: its steps' tools, with the arguments the
    orchestrator's own agents build from its resolved request (`searches.py`)."""

    def __init__(self) -> None:
        unused = ToolClient("bench", "http://127.0.0.1:9/mcp")  # never called: only `arguments`
        retry = RetrySettings()
        self.flights = FlightsAgent(unused, retry)
        self.hotels = HotelsAgent(unused, retry)
        self.weather = WeatherAgent(unused, retry)
        self.dining = DiningAgent(unused, retry)

    def __call__(self, trip: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        resolved = ResolvedTrip.model_validate(trip["resolved"])
        trip_shape = shape(resolved)
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for step in trip["steps"]:
            action = step["action"]
            if action == "search_flights":
                arguments = self.flights.arguments(resolved)
            elif action == "search_hotels":
                arguments = self.hotels.arguments(resolved, trip_shape.check_in, trip_shape.check_out)
            elif action == "get_forecast":
                arguments = self.weather.arguments(resolved)
            elif action == "search_restaurants":
                date = trip_shape.dinner_dates[int(step["id"].rsplit("_", 1)[1]) - 1]
                arguments = self.dining.arguments(resolved, date)
            else:
                continue
            calls += [(SERVER_OF[action], action, arguments)] * max(1, int(step["attempts"]))
        return calls


async def bare_calls(fleet: Fleet, trips: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """The trips' MCP calls made directly with a plain MCP client (one pooled connection per tool
    server, as the orchestrator keeps), `concurrency` trips' calls at a time, each trip's calls
    in parallel as its plan makes them; this process's CPU and the tool servers' over them."""
    rebuild = CallsOfATrip()
    call_sets = [rebuild(trip) for trip in trips]
    tickets = itertools.count()
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, Client] = {}
        for server, service in fleet.tools.items():
            clients[server] = await stack.enter_async_context(mcp_client(service.mcp_url))

        async def call(server: str, tool: str, arguments: dict[str, Any]) -> None:
            result = await clients[server].call_tool(tool, arguments, meta=OWNER)
            if result.is_error:
                raise RuntimeError(f"{tool}: {' '.join(getattr(c, 'text', '') for c in result.content)}")

        async def worker() -> None:
            while (i := next(tickets)) < len(call_sets):
                await asyncio.gather(*(call(*c) for c in call_sets[i]))

        for server, tool, arguments in call_sets[0]:  # connections open, first answers cached
            await call(server, tool, arguments)
        servers = {name: fleet.tools[name].proc.pid for name in fleet.tools}
        commands = redis_commands(fleet.redis_url)
        before, client_before = cpu_seconds(servers), own_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        client_cpu = own_cpu() - client_before
        after = cpu_seconds(servers)
        commands = redis_commands(fleet.redis_url) - commands
    calls = sum(len(c) for c in call_sets)
    return {
        "trips": len(call_sets),
        "calls": calls,
        "calls_per_trip": round(calls / len(call_sets), 2),
        "concurrency_trips": concurrency,
        "seconds": round(seconds, 3),
        "client_cpu_seconds": round(client_cpu, 4),
        "client_cpu_ms_per_trip": round(client_cpu * 1000 / len(call_sets), 3),
        "tool_servers_cpu_ms_per_trip": {
            name: round((after[name] - before[name]) * 1000 / len(call_sets), 3) for name in after
        },
        # What the tool servers ask of Redis for these calls (the trips' count less this is the
        # orchestrator's); INFO itself counts one.
        "redis_commands_per_trip": round((commands.total() - 1) / len(call_sets), 1),
    }


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Counts:
    critical: int = 100
    c1: int = 60
    c8: int = 200
    c32: int = 250  # per round
    rounds: int = 3
    bare: int = 250
    workers: int = 32
    switch_off: tuple[str, ...] = tuple(SWITCHES)


def run(counts: Counts, log_dir: Path, replicas_json: Path) -> dict[str, Any]:
    loads: dict[str, list[float]] = {"start": [round(x, 2) for x in os.getloadavg()]}
    with Harness(log_dir) as harness:
        progress(f"starting two fleets (harness run {harness.run_id}, logs in {log_dir})")
        hardened, without, sink_url = start_fleets(harness, counts.workers, switched_off(counts.switch_off))
        numbered = itertools.count(0, 1000)  # each trial its own dates' range start

        def trial(
            fleet: Fleet, label: str, concurrency: int, total: int, *, keep: bool = False, cpu: bool = True
        ) -> Trial:
            result = uvloop.run(
                drive(fleet, label, concurrency, total, next(numbered), keep=keep, measure_cpu=cpu)
            )
            s = result.summary()
            progress(
                f"{label}: {s['planned']}/{s['trips']} planned, {s['per_second']}/s, "
                f"plan p50 {s['plan_p50_ms']} ms, p99 {s['plan_p99_ms']} ms"
            )
            return result

        for fleet in (hardened, without):  # connections open, code paths warm
            trial(fleet, f"warm-up ({fleet.name})", 4, max(4, counts.workers // 2), cpu=False)

        progress("critical path: injected latency per search tool, one trip at a time")
        set_latency(hardened, on=True)
        try:
            trial(hardened, "warm-up (latency)", 1, 2, cpu=False)
            critical = trial(hardened, "critical path (injected latency), c=1", 1, counts.critical, keep=True)
        finally:
            set_latency(hardened, on=False)
        loads["after critical path"] = [round(x, 2) for x in os.getloadavg()]

        throughput = [
            trial(hardened, "no injected latency, c=1", 1, counts.c1, keep=True),
            trial(hardened, "no injected latency, c=8", 8, counts.c8),
        ]
        loads["after c=1, c=8"] = [round(x, 2) for x in os.getloadavg()]

        exported_before = httpx2.get(f"{sink_url}/stats").json()
        rounds: list[Trial] = []
        for r in range(counts.rounds):
            order = (hardened, without) if r % 2 == 0 else (without, hardened)
            for fleet in order:
                rounds.append(
                    trial(
                        fleet,
                        f"c={ROUND_CONCURRENCY}, {fleet.name}, round {r + 1}",
                        ROUND_CONCURRENCY,
                        counts.c32,
                        keep=fleet is hardened,
                    )
                )
        loads["after c=32 rounds"] = [round(x, 2) for x in os.getloadavg()]
        time.sleep(2.5)  # the services export spans in batches every second
        exported_after = httpx2.get(f"{sink_url}/stats").json()

        kept = [s.trip for t in rounds if t.fleet == hardened.name for s in t.planned if s.trip is not None]
        progress(
            f"bare MCP calls of {min(len(kept), counts.bare)} trips, {ROUND_CONCURRENCY} trips at a time"
        )
        bare = uvloop.run(bare_calls(hardened, kept[: counts.bare], ROUND_CONCURRENCY))
        sink = httpx2.get(f"{sink_url}/stats").json()
        loads["end"] = [round(x, 2) for x in os.getloadavg()]
    sink["spans_in_c32_rounds"] = exported_after["spans"] - exported_before["spans"]
    sink["by_source_in_c32_rounds"] = dict(
        Counter(exported_after["by_source"]) - Counter(exported_before["by_source"])
    )
    return analyse(critical, throughput, rounds, bare, sink, counts, loads, replicas_figure(replicas_json))


def aggregate(trials: list[Trial], label: str) -> dict[str, Any]:
    """Several trials of one configuration as one: trips over their summed time, CPU summed."""
    planned = [s for t in trials for s in t.planned]
    seconds = sum(t.seconds for t in trials)
    cpu: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    for t in trials:
        cpu.update(t.cpu)
        commands.update(t.redis_commands)
    plan = [s.plan_ms for s in planned]
    client = [s.client_ms for s in planned]
    return {
        "label": label,
        "fleet": trials[0].fleet,
        "concurrency": trials[0].concurrency,
        "rounds": len(trials),
        "trips": sum(len(t.samples) for t in trials),
        "planned": len(planned),
        "statuses": dict(sum((Counter(s.status for s in t.samples) for t in trials), Counter())),
        "seconds": round(seconds, 3),
        "per_second": round(len(planned) / seconds, 2),
        "per_second_by_round": [round(len(t.planned) / t.seconds, 2) for t in trials],
        "plan_p50_ms": round(statistics.median(plan), 1),
        "plan_p99_ms": round(percentile(plan, 0.99), 1),
        "client_p50_ms": round(statistics.median(client), 1),
        "client_p99_ms": round(percentile(client, 0.99), 1),
        "cpu_ms_per_trip": {k: round(v * 1000 / len(planned), 3) for k, v in sorted(cpu.items())},
        "load_generator_cpu_ms_per_trip": round(sum(t.client_cpu for t in trials) * 1000 / len(planned), 3),
        "redis_commands_per_trip": round(commands.total() / len(planned), 1),
        "redis_commands_per_trip_by_command": {
            k: round(v / len(planned), 2) for k, v in commands.most_common() if v >= len(planned) / 10
        },
    }


def replicas_figure(path: Path) -> dict[str, Any]:
    """`bench/replicas.py`'s result (its `--json`), not measured again here."""
    if not path.is_file():
        return {
            "source": str(path),
            "ratio": None,
            "note": "not measured: run `make bench` or bench.replicas --json",
        }
    data = json.loads(path.read_text())
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return {
        "source": str(path),
        "measured_at": written.isoformat(timespec="seconds"),
        "ratio": data.get("replica_ratio_bottleneck"),
        "cpu_bound_ratio": data.get("replica_ratio_cpu_bound"),
        "rows": data.get("rows"),
    }


def analyse(
    critical: Trial,
    throughput: list[Trial],
    rounds: list[Trial],
    bare: dict[str, Any],
    sink: dict[str, Any],
    counts: Counts,
    loads: dict[str, list[float]],
    replicas: dict[str, Any],
) -> dict[str, Any]:
    # Every trip's own critical path (its plan, and its steps' calls: a retried call counts twice);
    # the figure is against the most common one (all of them, unless a call was retried).
    paths = Counter(
        critical_path(s.trip["steps"], LATENCY_MS)[0] for s in critical.planned if s.trip is not None
    )
    path_ms = paths.most_common(1)[0][0]
    kept = next(
        s.trip
        for s in critical.planned
        if s.trip is not None and critical_path(s.trip["steps"], LATENCY_MS)[0] == path_ms
    )
    hops = critical_path(kept["steps"], LATENCY_MS)[1]
    plan = [s.plan_ms for s in critical.planned]
    on = aggregate([t for t in rounds if t.fleet == "hardened"], f"c={ROUND_CONCURRENCY}, hardened")
    off = aggregate([t for t in rounds if t.fleet != "hardened"], f"c={ROUND_CONCURRENCY}, switched off")
    orchestrator_ms = on["cpu_ms_per_trip"]["orchestrator"]
    exporting = on["planned"] + (0 if "tracing" in counts.switch_off else off["planned"])
    sink["spans_per_trip"] = round(sink["spans_in_c32_rounds"] / exporting, 1)
    sink["spans_per_trip_by_source"] = {
        source: round(n / exporting, 1)
        for source, n in sorted(sink["by_source_in_c32_rounds"].items(), key=lambda kv: -kv[1])
    }
    values: dict[str, float | None] = {
        "plan_p50_over_critical_path": statistics.median(plan) / path_ms,
        "plan_p99_over_critical_path": percentile(plan, 0.99) / path_ms,
        "trips_per_second_c32": on["per_second"],
        "orchestrator_cpu_over_bare_calls": orchestrator_ms / bare["client_cpu_ms_per_trip"],
        "hardening_on_over_off": on["per_second"] / off["per_second"],
        "replicas_2_over_1": replicas["ratio"],
    }
    figures = [
        {
            "key": t.key,
            "label": t.label,
            "value": None if values[t.key] is None else round(float(values[t.key] or 0), 3),
            "target": t.text,
            "met": t.met(values[t.key]),
        }
        for t in TARGETS
    ]
    return {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": loads,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "counts": vars(counts),
        "plan_time": "updated_at - created_at of the settled trip (accepted to planned, orchestrator clock)",
        "figures": figures,
        "critical_path": {
            "latency_ms": LATENCY_MS,
            "path": [vars(h) for h in hops],
            "ms": path_ms,
            "trips_by_critical_path_ms": {f"{ms:g}": n for ms, n in sorted(paths.items())},
            "breakdown_ms": breakdown([s.trip for s in critical.planned if s.trip is not None]),
            "breakdown_ms_no_injected_latency": breakdown(
                [s.trip for s in throughput[0].planned if s.trip is not None]
            ),
            "steps": [
                {
                    "id": s["id"],
                    "action": s["action"],
                    "depends_on": s["depends_on"],
                    "attempts": s["attempts"],
                }
                for s in kept["steps"]
            ],
            "trial": critical.summary(),
        },
        "throughput": [*(t.summary() for t in throughput), on],
        "cpu": {
            "orchestrator_ms_per_trip": orchestrator_ms,
            "per_trip_ms_hardened": on["cpu_ms_per_trip"],
            "per_trip_ms_switched_off": off["cpu_ms_per_trip"],
            "load_generator_ms_per_trip": on["load_generator_cpu_ms_per_trip"],
            "bare_calls": bare,
        },
        "hardening": {
            "on": on,
            "off": off,
            "switched_off": list(counts.switch_off),
            "switched_off_environment": switched_off(counts.switch_off),
            "otlp_receiver": sink,
        },
        "replicas": replicas,
        "samples_ms": {
            critical.label: [round(s.plan_ms, 1) for s in critical.planned],
            **{t.label: [round(s.plan_ms, 1) for s in t.planned] for t in throughput},
            on["label"]: [round(s.plan_ms, 1) for t in rounds if t.fleet == "hardened" for s in t.planned],
            off["label"]: [round(s.plan_ms, 1) for t in rounds if t.fleet != "hardened" for s in t.planned],
        },
    }


# -- the report ------------------------------------------------------------------------------------


def report(figures: dict[str, Any]) -> None:
    critical = figures["critical_path"]
    path = " -> ".join(
        f"{h['step']} ({h['calls']} x {h['ms'] / max(1, h['calls']):g} ms)" if h["calls"] else h["step"]
        for h in critical["path"]
    )
    steps = ", ".join(
        f"{s['id']}" + (f" after {'+'.join(s['depends_on'])}" if s["depends_on"] else "")
        for s in critical["steps"]
    )
    print(f"\nThe plan's DAG: {steps}")
    print(f"Injected latency (ms): {critical['latency_ms']}")
    print(f"Critical path: {path} = {critical['ms']:g} ms")
    print(f"Plan time: {figures['plan_time']}")
    print("Where a trip's plan time goes, c=1 (medians, ms):        injected latency   none")
    bare = critical["breakdown_ms_no_injected_latency"]
    for label, ms in critical["breakdown_ms"].items():
        print(f"  {label:<66}{ms:>8.1f}{bare.get(label, math.nan):>8.1f}")

    print(
        f"\n{'configuration':<44}{'trips':>7}{'trips/s':>9}{'plan p50':>10}{'plan p99':>10}{'client p50':>12}"
    )
    rows = [critical["trial"], *figures["throughput"], figures["hardening"]["off"]]
    for r in rows:
        print(
            f"{r['label']:<44}{r['planned']:>7}{r['per_second']:>9.1f}{r['plan_p50_ms']:>8.0f}ms"
            f"{r['plan_p99_ms']:>8.0f}ms{r['client_p50_ms']:>10.0f}ms"
        )

    cpu = figures["cpu"]
    bare = cpu["bare_calls"]
    on, off = cpu["per_trip_ms_hardened"], cpu["per_trip_ms_switched_off"]
    print("\nCPU ms per planned trip, c=32 (of it kernel)   hardened    switched off")
    for name in sorted(n for n in on if not n.endswith(" system")):
        row = f"  {name:<44}{on[name]:>7.2f} ({on[f'{name} system']:.1f})"
        if name in off:
            row += f"{off[name]:>9.2f} ({off[f'{name} system']:.1f})"
        print(row)
    print(f"  {'load generator (this process)':<44}{cpu['load_generator_ms_per_trip']:>7.2f}")
    servers = ", ".join(
        f"{k} {v:.2f}" for k, v in bare["tool_servers_cpu_ms_per_trip"].items() if not k.endswith(" system")
    )
    print(
        f"Bare MCP calls of a trip ({bare['calls_per_trip']:g} calls, plain MCP client): "
        f"{bare['client_cpu_ms_per_trip']:.2f} ms client CPU; tool servers {servers} ms"
    )
    hardening = figures["hardening"]
    print(
        f"Redis commands per trip: {hardening['on']['redis_commands_per_trip']:g} hardened, "
        f"{hardening['off']['redis_commands_per_trip']:g} switched off, of which the tool servers' "
        f"{bare['redis_commands_per_trip']:g} (the bare calls')"
    )
    print(f"The switched-off fleet goes without: {', '.join(hardening['switched_off'])}")
    sink = hardening["otlp_receiver"]
    print(f"Spans exported per trip (every service): {sink['spans_per_trip']:g}, by service and scope:")
    for source, n in sink["spans_per_trip_by_source"].items():
        print(f"  {source:<62}{n:>8g}")

    print(f"\n{'figure':<62}{'value':>8}  {'target':<9}")
    for f in figures["figures"]:
        value = "n/a" if f["value"] is None else f"{f['value']:.2f}"
        verdict = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[f["met"]]
        print(f"{f['label']:<62}{value:>8}  {f['target']:<9} {verdict}")
    replicas = figures["replicas"]
    print(f"(replicas: from {replicas['source']}, {replicas.get('measured_at') or replicas.get('note')})")
    print(f"machine: {figures['machine']['cpus']} cpus, load averages {figures['machine']['load_average']}")


def plot(figures: dict[str, Any], png: Path) -> None:
    """The plan-time distribution of each configuration (empirical CDF), the critical path marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for label, samples in figures["samples_ms"].items():
        ordered = sorted(samples)
        if not ordered:
            continue
        shares = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, shares, where="post", label=f"{label} (n={len(ordered)})")
    ax.axvline(figures["critical_path"]["ms"], color="grey", linestyle="--", linewidth=1)
    ax.annotate(
        f"critical path {figures['critical_path']['ms']:g} ms",
        (figures["critical_path"]["ms"], 0.02),
        rotation=90,
        fontsize=8,
        color="grey",
        ha="right",
    )
    ax.set_xscale("log")
    ticks = [t * 10**e for e in range(1, 5) for t in (1, 2, 5)]
    low, high = ax.get_xlim()
    ax.set_xticks([t for t in ticks if low <= t <= high], [f"{t:g}" for t in ticks if low <= t <= high])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("plan time, accepted to planned (ms, log scale)")
    ax.set_ylabel("share of trips")
    machine = figures["machine"]
    ax.set_title(
        f"Waypoint trip plan time, one orchestrator ({machine['cpus']} cpus, {figures['measured_at'][:10]})",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Counts()
    parser.add_argument(
        "--critical-trips", type=int, default=defaults.critical, help="trips, injected latency"
    )
    parser.add_argument("--c1-trips", type=int, default=defaults.c1, help="trips at concurrency 1")
    parser.add_argument("--c8-trips", type=int, default=defaults.c8, help="trips at concurrency 8")
    parser.add_argument("--c32-trips", type=int, default=defaults.c32, help="trips per concurrency-32 round")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="concurrency-32 rounds per fleet")
    parser.add_argument(
        "--bare-trips", type=int, default=defaults.bare, help="trips whose calls are made bare"
    )
    parser.add_argument("--workers", type=int, default=defaults.workers, help="WAYPOINT_WORKERS")
    parser.add_argument(
        "--switch-off",
        nargs="+",
        choices=tuple(SWITCHES),
        default=list(defaults.switch_off),
        help="what the switched-off fleet goes without (default: all)",
    )
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "trips.json", help="where to write the figures"
    )
    parser.add_argument("--png", type=Path, default=RESULTS / "trips.png", help="where to write the plot")
    parser.add_argument(
        "--replicas-json", type=Path, default=RESULTS / "replicas.json", help="bench.replicas' figures"
    )
    args = parser.parse_args()
    counts = Counts(
        args.critical_trips,
        args.c1_trips,
        args.c8_trips,
        args.c32_trips,
        args.rounds,
        args.bare_trips,
        args.workers,
        tuple(args.switch_off),
    )
    log_dir = Path(tempfile.mkdtemp(prefix="waypoint-bench-trips-"))
    try:
        figures = run(counts, log_dir, args.replicas_json)
    except Interrupted as stopped:
        progress(f"{stopped}; every process it started is stopped")
        return 128 + stopped.signum
    report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    plot(figures, args.png)
    print(f"\nfigures written to {args.json}, plot to {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
