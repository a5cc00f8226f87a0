"""Property-based fuzzing of the trip API from its own OpenAPI document (schemathesis).

Whatever a client sends, the API answers with a documented status and content type, its
documented schema, and never a server error.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BIN, ROOT, Harness, ServiceProcess, orchestrator_env, suite_key

CONFIG = """
hooks = "tests.schemathesis_hooks"

[auth.openapi.ApiKey]
bearer = "${WAYPOINT_FUZZ_KEY}"

# A Last-Event-ID that is well formed may still name an event the trip's stream never sent
# (one after its last); that is a 400 the schema cannot express. Everything else a schema-valid
# request to the stream gets is checked as usual.
[[operations]]
include-path = "/v1/trips/{trip_id}/events"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]
"""


@pytest.fixture
def fuzzed(servers: dict[str, ServiceProcess], harness: Harness) -> Iterator[ServiceProcess]:
    """An orchestrator with a queue of its own, so generated trips do not mix with other tests'.

    It has workers: trips must settle, or the event streams the fuzzer opens would never end.
    """
    redis = harness.redis()
    service = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(redis.url, servers, WAYPOINT_MAX_WAIT_SECONDS="5"),
    )
    yield service
    service.stop()
    redis.stop()


def test_the_api_survives_generated_requests(fuzzed: ServiceProcess, tmp_path: Path) -> None:
    # The key goes through the document's own security scheme (`ApiKey`), so the checks that
    # leave it out or spoil it (ignored_auth, missing_required_header) know which header it is.
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{fuzzed.base_url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "20261125",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        env={
            **os.environ,
            "WAYPOINT_FUZZ_KEY": suite_key(fuzzed.env["REDIS_URL"]).key,
            "PYTHONPATH": str(ROOT),
        },
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
