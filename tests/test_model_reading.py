"""The language model reads the query: validated, repaired once, budgeted, traced, and replaced by
the rules whenever it fails. Against a scripted OpenAI-compatible endpoint over real HTTP
(`tests/fakellm.py`), with an orchestrator of this module's own."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bench.fakellm import FakeModel, Garbage, Hang, Reply, Status
from tests.helpers import month_ahead, plan_and_wait, service_today
from tests.otlp import OtlpReceiver, latest_points, spans_of_trace
from tests.support import Harness, ServiceProcess, free_port, orchestrator_env
from waypoint_orchestrator.budgets import BudgetLedger
from waypoint_orchestrator.llm.client import ModelClient, ModelUnavailable
from waypoint_orchestrator.models import Limits
from waypoint_orchestrator.settings import OrchestratorSettings

PRICE_IN, PRICE_OUT = 2.5, 10.0  # USD per million tokens
QUERY = "4-day hiking trip to Patagonia from Seattle in {month} with one fancy dinner, under $3000 for two"


def query_and_dates() -> tuple[str, dt.date]:
    """The Patagonia query naming a month ahead, and the 10th of it (what the rules read)."""
    month, tenth = month_ahead()
    return QUERY.format(month=month), tenth


def reading(start: dt.date, **changes: Any) -> dict[str, Any]:
    """A well-behaved model's reading of the Patagonia query, starting on `start`."""
    return {
        "kind": "full_trip",
        "origin": "Seattle",
        "destination": "Patagonia",
        "start_date": start.isoformat(),
        "days": 4,
        "travelers": 2,
        "budget_amount": 3000,
        "budget_currency": "USD",
        "interests": ["hiking"],
        "dinners": 1,
        "dinner_style": "fancy",
        "assumptions": ["the whole party flies together"],
        **changes,
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModel]:
    model = FakeModel()
    yield model
    model.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    otlp.start()
    yield otlp
    otlp.stop()


@pytest.fixture(scope="module")
def orchestrator(
    harness: Harness, servers: dict[str, ServiceProcess], fake: FakeModel, receiver: OtlpReceiver
) -> Iterator[ServiceProcess]:
    redis = harness.redis()
    env = orchestrator_env(
        redis.url,
        servers,
        WAYPOINT_LLM_BASE_URL=fake.base_url,
        WAYPOINT_LLM_MODEL=fake.model,
        WAYPOINT_LLM_API_KEY="sk-test-never-logged-3f9a",
        WAYPOINT_LLM_TIMEOUT_SECONDS="1",
        WAYPOINT_LLM_ATTEMPTS="3",
        WAYPOINT_LLM_INPUT_PRICE_PER_MILLION=str(PRICE_IN),
        WAYPOINT_LLM_OUTPUT_PRICE_PER_MILLION=str(PRICE_OUT),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="500",
    )
    service = harness.start("waypoint-orchestrator", env)
    yield service
    service.stop()
    redis.stop()


@pytest.fixture(autouse=True)
def well_behaved(fake: FakeModel) -> None:
    """Each test starts with an empty script and a model that reads the query well."""
    _, tenth = query_and_dates()
    fake.default = Reply(content=reading(tenth + dt.timedelta(days=2)))
    fake.script()


def test_the_model_reads_the_patagonia_trip_and_its_tokens_are_charged_and_traced(
    orchestrator: ServiceProcess, fake: FakeModel, receiver: OtlpReceiver
) -> None:
    query, tenth = query_and_dates()
    model_start = tenth + dt.timedelta(days=2)  # not what the rules read: the model's reading is used
    fake.default = Reply(content=reading(model_start), input_tokens=800, output_tokens=150)
    trip = plan_and_wait(orchestrator, {"query": query})

    assert trip["status"] == "planned", trip["termination"]
    assert trip["decision"]["read_by"] == "model"
    assert trip["resolved"]["start_date"] == model_start.isoformat()
    assert trip["resolved"]["destination"]["code"] == "FTE"
    assert "the language model assumed: the whole party flies together" in trip["warnings"]
    used = trip["usage"]["used"]
    assert used["tokens"] == 950
    assert used["cost_usd"] == pytest.approx((800 * PRICE_IN + 150 * PRICE_OUT) / 1_000_000)

    [request] = fake.received()
    assert request["model"] == fake.model
    assert request["response_format"]["type"] == "json_schema"
    assert "destination" in request["response_format"]["json_schema"]["schema"]["properties"]
    system, user = request["messages"]
    assert service_today().isoformat() in system["content"]
    assert user == {"role": "user", "content": query}

    def chat_span_arrived(r: OtlpReceiver) -> bool:
        return any(s.name == f"chat {fake.model}" for s in spans_of_trace(r.spans(), trip["trace_id"]))

    receiver.wait_for(chat_span_arrived, timeout=20, what="the chat span")
    [chat] = [s for s in spans_of_trace(receiver.spans(), trip["trace_id"]) if s.name.startswith("chat ")]
    assert chat.kind == "CLIENT"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == fake.model
    assert chat.attributes["gen_ai.response.model"] == fake.model
    assert chat.attributes["gen_ai.usage.input_tokens"] == 800
    assert chat.attributes["gen_ai.usage.output_tokens"] == 150
    assert list(chat.attributes["gen_ai.response.finish_reasons"]) == ["stop"]
    # No prompt or completion on the span unless asked for, and never the key.
    assert not any(name.startswith(("gen_ai.input", "gen_ai.output")) for name in chat.attributes)
    assert all("sk-test-never-logged" not in repr(s.attributes) for s in receiver.spans())
    assert query not in repr(chat.attributes)
    assert "sk-test-never-logged" not in orchestrator.log_path.read_text()

    def token_metrics(r: OtlpReceiver) -> set[str]:
        points = latest_points(r.metrics(), "gen_ai.client.token.usage")
        return {str(p.attributes["gen_ai.token.type"]) for p in points}

    receiver.wait_for(lambda r: token_metrics(r) == {"input", "output"}, timeout=20, what="token metrics")
    assert latest_points(receiver.metrics(), "gen_ai.client.operation.duration")
    receiver.wait_for(
        lambda r: sum(p.value or 0 for p in latest_points(r.metrics(), "waypoint.model.cost")) > 0,
        timeout=20,
        what="the cost metric",
    )
    # And per trip, once it settles: its tokens.
    receiver.wait_for(
        lambda r: any((p.sum or 0) >= 950 for p in latest_points(r.metrics(), "waypoint.trip.tokens")),
        timeout=20,
        what="the trip's tokens",
    )


def test_an_invalid_reading_gets_one_repair_round_with_the_errors(
    orchestrator: ServiceProcess, fake: FakeModel
) -> None:
    query, tenth = query_and_dates()
    good = reading(tenth + dt.timedelta(days=1))
    fake.script(
        Reply(content={**good, "days": 500}, input_tokens=300, output_tokens=60),
        Reply(content=good, input_tokens=400, output_tokens=60),
    )
    trip = plan_and_wait(orchestrator, {"query": query})
    assert trip["decision"]["read_by"] == "model"
    assert trip["resolved"]["start_date"] == good["start_date"]
    assert trip["usage"]["used"]["tokens"] == 820  # both rounds
    first, second = fake.received()
    repair = second["messages"][-1]["content"]
    assert "days" in repair
    assert "500" not in repair  # the errors name the field, they do not echo the answer
    assert second["messages"][:2] == first["messages"]


def test_an_answer_invalid_twice_leaves_the_query_to_the_rules(
    orchestrator: ServiceProcess, fake: FakeModel
) -> None:
    query, tenth = query_and_dates()
    fake.script(Reply(content="Sure! Here is the trip: Patagonia."), Reply(content={"travelers": 0}))
    trip = plan_and_wait(orchestrator, {"query": query})
    assert len(fake.received()) == 2
    assert trip["decision"]["read_by"] == "rules"
    assert trip["resolved"]["start_date"] == tenth.isoformat()
    assert any("invalid twice" in w for w in trip["warnings"]), trip["warnings"]
    assert trip["status"] == "planned", trip["termination"]


@pytest.mark.parametrize(
    ("behaviours", "requests"),
    [
        ([Status(500), Status(502), Status(503)], 3),
        ([Hang(3), Hang(3), Hang(3)], 3),
        ([Garbage(), Garbage(), Garbage()], 3),
        ([Reply(content="{", finish_reason="length", output_tokens=1024)], 1),
        ([Reply(content=None, refusal="I can't help with that.")], 1),
        ([Status(401)], 1),
    ],
    ids=["5xx", "timeout", "not-json", "cut-off", "refusal", "refused-call"],
)
def test_a_model_that_fails_leaves_the_query_to_the_rules_and_the_trip_goes_on(
    orchestrator: ServiceProcess, fake: FakeModel, behaviours: list[Any], requests: int
) -> None:
    """Transient failures are retried (three tries); final ones are not. Either way the rules
    read the query, the trip says so, and it is planned as it would be without a model."""
    query, tenth = query_and_dates()
    fake.script(*behaviours)
    trip = plan_and_wait(orchestrator, {"query": query})
    assert len(fake.received()) == requests
    assert trip["decision"]["read_by"] == "rules"
    assert trip["resolved"]["start_date"] == tenth.isoformat()
    assert any(w.startswith("the language model could not read the query") for w in trip["warnings"])
    assert trip["status"] == "planned", trip["termination"]
    assert trip["termination"]["reason"] == "done"


def test_a_429_is_retried_no_sooner_than_its_retry_after(
    orchestrator: ServiceProcess, fake: FakeModel
) -> None:
    query, _ = query_and_dates()
    fake.script(Status(429, retry_after=1))
    started = time.monotonic()
    trip = plan_and_wait(orchestrator, {"query": query})
    assert trip["decision"]["read_by"] == "model"
    assert len(fake.received()) == 2
    assert time.monotonic() - started >= 1.0


def test_a_token_budget_too_small_for_a_call_ends_the_trip_before_the_call(
    orchestrator: ServiceProcess, fake: FakeModel
) -> None:
    query, _ = query_and_dates()
    trip = plan_and_wait(orchestrator, {"query": query, "limits": {"max_tokens": 100}})
    assert fake.received() == []
    assert trip["status"] == "failed"
    assert trip["termination"]["reason"] == "budget_exhausted"
    assert trip["termination"]["detail"].startswith("tokens:")
    assert trip["usage"]["used"]["tokens"] == 0


def test_the_usage_a_model_reports_is_charged_and_stops_the_next_call(
    orchestrator: ServiceProcess, fake: FakeModel
) -> None:
    """A model that reports a huge usage is charged what it reports: the repair round's
    reservation no longer fits, so the trip stops `budget_exhausted` instead of calling again."""
    query, tenth = query_and_dates()
    fake.script(Reply(content={"travelers": 0}, input_tokens=18_000, output_tokens=500))
    trip = plan_and_wait(orchestrator, {"query": query, "limits": {"max_tokens": 20_000}})
    assert len(fake.received()) == 1
    assert trip["usage"]["used"]["tokens"] == 18_500
    assert trip["status"] == "failed"
    assert trip["termination"]["reason"] == "budget_exhausted"
    assert trip["resolved"] is None
    assert tenth.isoformat() not in str(trip["steps"])


async def test_an_endpoint_that_refuses_connections_is_tried_and_charged_nothing(redis: Redis) -> None:
    """The client alone, on the suite's Redis: a closed port is a transient failure, tried
    `llm_attempts` times; each attempt's reservation is settled at 0, so the trip keeps its tokens."""
    ledger = BudgetLedger(redis)
    trip_id = uuid.uuid4().hex
    await ledger.open(trip_id, Limits(max_steps=5, max_tool_calls=5, max_tokens=10_000, max_wall_seconds=60))
    settings = OrchestratorSettings(
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_attempts=2, retry_max_wait_seconds=0.1
    )
    client = ModelClient(settings, ledger)
    try:
        with pytest.raises(ModelUnavailable, match="could not be reached"):
            await client.chat(trip_id, "read:1", [{"role": "user", "content": "hello"}])
    finally:
        await client.aclose()
    usage = await ledger.usage(trip_id)
    assert usage is not None
    assert usage.used.tokens == 0
