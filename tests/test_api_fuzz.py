"""Property-based fuzzing of the trip API from its own OpenAPI document (schemathesis).

Whatever a client sends, the API answers with a documented status and content type, its
documented schema, and never a server error.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BIN, RedisServer, ServiceProcess, orchestrator_env


@pytest.fixture
def fuzzed(servers: dict[str, ServiceProcess], log_dir: Path) -> Iterator[ServiceProcess]:
    """An orchestrator with a queue of its own, so generated trips do not mix with other tests'.

    It has workers: trips must settle, or the event streams the fuzzer opens would never end.
    """
    redis = RedisServer.start()
    service = ServiceProcess.start(
        "waypoint-orchestrator",
        orchestrator_env(redis.url, servers, WAYPOINT_MAX_WAIT_SECONDS="5"),
        log_dir,
    )
    yield service
    service.stop()
    redis.stop()


def test_the_api_survives_generated_requests(fuzzed: ServiceProcess, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{fuzzed.base_url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261125",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
