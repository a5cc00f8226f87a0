"""`make run`: the whole local fleet comes up ready, with a service token of its own, and Ctrl-C
leaves no process (and no token file) behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx2
import psutil

from tests.support import ROOT, free_port
from waypoint_common.fleet import FLEET


def test_make_run_starts_every_service_and_ctrl_c_stops_them_all() -> None:
    ports = {spec.port_variable: str(free_port()) for spec in FLEET}
    env = {**os.environ, **ports, "REDIS_PORT": str(free_port())}
    env.pop("REDIS_URL", None)
    env.pop("WAYPOINT_SERVICE_TOKEN", None)
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert make.stdout is not None
        deadline = time.monotonic() + 120
        for line in make.stdout:
            output.append(line)
            if "Press Ctrl-C to stop." in line or time.monotonic() > deadline:
                break
        text = "".join(output)
        assert "Waypoint fleet is ready" in text, text[-3000:]
        for spec in FLEET:
            base = f"http://127.0.0.1:{ports[spec.port_variable]}"
            assert base in text
            assert httpx2.get(f"{base}/readyz", timeout=5).json()["status"] == "ready"
            assert httpx2.get(f"{base}/healthz", timeout=5).status_code == 200
        processes = psutil.Process(make.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        for command in ("redis-server", *(spec.command for spec in FLEET)):
            assert command in names, names

        # A random service token for this run, in a file only the user reads, that the tool
        # servers require and no process has in its environment.
        found = re.search(r"service token\s+(\S+)", text)
        assert found is not None, text[-3000:]
        token_file = Path(found.group(1))
        assert token_file.stat().st_mode & 0o077 == 0
        token = token_file.read_text()
        assert len(token) >= 32
        admin = f"http://127.0.0.1:{ports['MCP_FLIGHTS_PORT']}/admin/stats"
        assert httpx2.get(admin, timeout=5).status_code == 401
        assert httpx2.get(admin, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
        for process in processes:
            assert token not in " ".join(f"{k}={v}" for k, v in process.environ().items())

        # A development API key, printed with the URLs, that the trip API takes.
        key = re.search(r"api key\s+(wpk_\S+)", text)
        assert key is not None, text[-3000:]
        api = f"http://127.0.0.1:{ports['WAYPOINT_PORT']}/v1/trips"
        trip = {"destination": "Denver", "origin": "SEA"}
        assert httpx2.post(api, json=trip, timeout=10).status_code == 401
        made = httpx2.post(api, json=trip, headers={"Authorization": f"Bearer {key.group(1)}"}, timeout=10)
        assert made.status_code == 202, made.text
        assert made.json()["tenant"] == "dev"
        assert f"Bearer {key.group(1)}" in text  # the printed example uses it

        os.killpg(make.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        make.wait(timeout=60)
        gone, alive = psutil.wait_procs(processes, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
        assert len(gone) == len(processes)
        assert not token_file.exists()
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
