"""`make bench-trips` with tiny counts: it runs end to end, stops everything it started, and writes
every figure (with its target and verdict) as JSON and the plot as PNG. No timing is asserted:
the figures are measured by `make bench`, not judged by the suite."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import psutil

from bench.harness import HARNESS_VARIABLE
from bench.trips import TARGETS

ROOT = Path(__file__).resolve().parent.parent


def test_a_tiny_run_writes_every_figure(tmp_path: Path) -> None:
    out, png = tmp_path / "trips.json", tmp_path / "trips.png"
    replicas = tmp_path / "replicas.json"  # as bench.replicas writes it (not measured again here)
    replicas.write_text(
        json.dumps({"replica_ratio_bottleneck": 1.8, "replica_ratio_cpu_bound": 0.7, "rows": []})
    )
    tiny = [
        "--critical-trips",
        "3",
        "--c1-trips",
        "3",
        "--c8-trips",
        "8",
        "--c32-trips",
        "8",
        "--rounds",
        "1",
    ]
    files = ["--json", str(out), "--png", str(png), "--replicas-json", str(replicas)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.trips", *tiny, "--bare-trips", "3", "--workers", "8", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    figures = json.loads(out.read_text())
    by_key = {f["key"]: f for f in figures["figures"]}
    assert set(by_key) == {t.key for t in TARGETS}
    for target in TARGETS:
        figure = by_key[target.key]
        assert isinstance(figure["value"], float), figure
        assert figure["target"] == target.text
        assert figure["met"] is target.met(figure["value"])
        # Every figure is printed with its target and verdict.
        verdict = "MET" if figure["met"] else "MISSED"
        assert any(
            target.label in line and target.text in line and verdict in line
            for line in done.stdout.splitlines()
        )
    assert by_key["replicas_2_over_1"]["value"] == 1.8
    assert figures["critical_path"]["ms"] == 200.0  # flights, the longest search, then choose and summarize
    assert [hop["step"] for hop in figures["critical_path"]["path"]] == [
        "search_flights",
        "choose",
        "summarize",
    ]
    assert figures["hardening"]["otlp_receiver"]["spans"] > 0  # the hardened fleet really exported
    assert figures["cpu"]["bare_calls"]["calls_per_trip"] >= 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Nothing it started is left running (its processes carry its harness's run id).
    run = re.search(r"harness run ([0-9a-f]+)", done.stderr)
    assert run is not None, done.stderr[-2000:]
    left = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(HARNESS_VARIABLE) == run[1]:
                left.append(process.pid)
    assert left == []
