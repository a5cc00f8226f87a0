"""`make run`: the whole local fleet comes up ready, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx2
import psutil

from tests.support import ROOT, free_port
from waypoint_common.fleet import FLEET


def test_make_run_starts_every_service_and_ctrl_c_stops_them_all() -> None:
    ports = {spec.port_variable: str(free_port()) for spec in FLEET}
    env = {**os.environ, **ports, "REDIS_PORT": str(free_port())}
    env.pop("REDIS_URL", None)
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

        os.killpg(make.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        make.wait(timeout=60)
        gone, alive = psutil.wait_procs(processes, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
        assert len(gone) == len(processes)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
