"""`make bench`: does a flood of adversarial trip requests slow the API down for everyone else?

Starts the local fleet (`waypoint-fleet`'s launcher: a redis-server, the four tool servers and an
orchestrator, on free ports of 127.0.0.1) and probes `GET /healthz` at a steady pace, first with
the fleet idle, then while one API key posts adversarial 2,000-character queries (the families of
`bench/adversarial_queries.py`: runs of whitespace after dates and sums, digits, punctuation,
places, unicode) as fast as `--rate` allows. Each query is read by the orchestrator's router off
the event loop; before issue 9 one such query held the loop for up to 3 s.

Prints p50/p99/max of the probe in both phases and the flood's answers, writes the same figures
as JSON, and exits 1 when the flood's p99 is more than `--max-ratio` (2) times the idle p99.
Stops by itself.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx2

from bench.adversarial_queries import corpus
from waypoint_common.fleet import FLEET, create_api_key, running_fleet

DEFAULT_JSON = Path(".run/bench/edge_flood.json")


@dataclass
class Probe:
    phase: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Report:
    idle: Probe
    flood: Probe
    ratio_p99: float
    max_ratio: float
    flood_rate_per_s: float
    flood_answers: dict[str, int] = field(default_factory=dict)
    machine: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.ratio_p99 <= self.max_ratio


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe(base: str, seconds: float, interval: float, phase: str) -> Probe:
    """`GET /healthz` every `interval` seconds on one kept-alive connection."""
    times: list[float] = []
    with httpx2.Client(base_url=base, timeout=10) as client:
        for _ in range(20):  # warm the connection and the route
            client.get("/healthz")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = client.get("/healthz")
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"/healthz answered {response.status_code}")
            times.append(elapsed * 1000)
            time.sleep(max(0.0, interval - elapsed))
    ordered = sorted(times)
    return Probe(
        phase=phase,
        samples=len(ordered),
        p50_ms=round(statistics.median(ordered), 2),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        max_ms=round(ordered[-1], 2),
    )


PLAIN = "4-day hiking trip to Patagonia from Seattle, under $3000 for two"  # no dates: needs_input


def flood(
    base: str,
    key: str,
    rate: float,
    stop: threading.Event,
    answers: collections.Counter[str],
    queries: list[str],
) -> None:
    """Post the queries, in turn, at `rate` a second until `stop` is set."""
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"}

    def post(query: str, client: httpx2.Client) -> None:
        try:
            status = str(client.post("/v1/trips", json={"query": query}, headers=headers).status_code)
        except httpx2.HTTPError as exc:
            status = type(exc).__name__
        with lock:
            answers[status] += 1

    with (
        httpx2.Client(base_url=base, timeout=30, limits=httpx2.Limits(max_connections=16)) as client,
        concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool,
    ):
        sent = 0
        started = time.monotonic()
        while not stop.is_set():
            due = started + sent / rate
            now = time.monotonic()
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            pool.submit(post, queries[sent % len(queries)], client)
            sent += 1


def run(seconds: float, interval: float, rate: float, max_ratio: float, plain: bool) -> Report:
    environ = {**os.environ, "REDIS_PORT": str(free_port()), "WAYPOINT_LOG_LEVEL": "WARNING"}
    environ.pop("REDIS_URL", None)
    environ.update({spec.port_variable: str(free_port()) for spec in FLEET})
    bin_dir = Path(sys.executable).parent
    with (
        tempfile.TemporaryDirectory(prefix="waypoint-bench-") as logs,
        running_fleet(environ, bin_dir, Path(logs)) as fleet,
    ):
        base = fleet.urls["orchestrator"]
        key, _ = create_api_key(
            bin_dir, fleet.urls["redis"], "flood", "--requests-per-minute", "100000", "--name", "bench"
        )
        idle = probe(base, seconds, interval, "idle")
        answers: collections.Counter[str] = collections.Counter()
        stop = threading.Event()
        queries = [PLAIN] if plain else [q for family in corpus(generated_count=40).values() for q in family]
        flooder = threading.Thread(target=flood, args=(base, key, rate, stop, answers, queries), daemon=True)
        flooder.start()
        time.sleep(1.0)  # the flood is under way before the probe starts
        try:
            flooded = probe(base, seconds, interval, "flood")
        finally:
            stop.set()
            flooder.join(timeout=60)
    return Report(
        idle=idle,
        flood=flooded,
        ratio_p99=round(flooded.p99_ms / idle.p99_ms, 2),
        max_ratio=max_ratio,
        flood_rate_per_s=rate,
        flood_answers=dict(answers),
        machine={
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between /healthz probes")
    parser.add_argument("--rate", type=float, default=10, help="adversarial requests a second")
    parser.add_argument("--max-ratio", type=float, default=2.0, help="allowed flood p99 / idle p99")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the figures")
    parser.add_argument(
        "--plain", action="store_true", help="flood with one short ordinary query instead (for comparison)"
    )
    args = parser.parse_args()
    report = run(args.seconds, args.interval, args.rate, args.max_ratio, args.plain)
    what = "one short ordinary query" if args.plain else "adversarial 2,000-character queries"
    print(f"\n/healthz under a flood of {what} ({args.rate:g}/s, 127.0.0.1)")
    print(f"{'phase':<8} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for row in (report.idle, report.flood):
        print(f"{row.phase:<8} {row.samples:>8} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f} {row.max_ms:>8.2f}")
    print(f"flood answers: {report.flood_answers}")
    verdict = "met" if report.passed else "MISSED"
    print(f"p99 under flood / idle: {report.ratio_p99:.2f} (target <= {report.max_ratio:g}): {verdict}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**asdict(report), "passed": report.passed}, indent=2))
    print(f"figures written to {args.json}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
