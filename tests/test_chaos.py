"""Chaos: 200 booked trips against a fleet injecting faults, with an orchestrator killed midway.

Afterwards every trip has settled with a recorded reason, and the bookings in the tool servers'
Redis are exactly the bookings the trips report: no duplicate, no orphan, none missing.
"""

from __future__ import annotations

from pathlib import Path

from bench.chaos import run_chaos


def test_two_hundred_trips_under_faults_and_a_killed_orchestrator(tmp_path: Path) -> None:
    report = run_chaos(200, error_rate=0.2, seed=11, log_dir=tmp_path, settle_timeout=600)
    print(report.table())
    assert report.trips == 200
    assert report.unsettled == []
    assert report.without_reason == []
    assert report.duplicates == 0
    assert report.orphans == []
    assert report.missing == []
    assert report.mismatched == []
    assert report.bookings_in_redis == report.bookings_reported
    # The faults really happened, and most trips got booked through them.
    assert report.injected["error"] > 100
    assert report.injected["lose_response"] > 10
    assert report.injected["hang"] > 5
    assert report.retries > 100
    assert report.states["booked"] >= 150
    # The orchestrator that was killed left jobs behind that the others finished: its log shows
    # a start, a kill (no shutdown line), and a second start on the same port.
    logs = sorted(tmp_path.glob("waypoint-orchestrator-*.log"))
    restarted = [p for p in logs if p.read_text().count("Application startup complete") == 2]
    assert len(restarted) == 1
