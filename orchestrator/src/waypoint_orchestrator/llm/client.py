"""One call to the language model: budgeted, retried at one layer, traced and measured.

The endpoint is any OpenAI-compatible Chat Completions API, reached with the `openai` SDK (its
own retries off: ours retry, with the tool calls' policy). Before each attempt, the attempt's
worst case (an estimate of the prompt plus `max_tokens`) is charged to the trip's token budget
with a charge id, so a spent budget stops the call before it is made; afterwards the charge is
settled with the usage the endpoint reported (an attempt that reports none settles at 0). Each
attempt is a `chat <model>` span with the OpenTelemetry GenAI attributes, and counts in
`gen_ai.client.token.usage` and `gen_ai.client.operation.duration`. Prompts and completions go
on spans only when `WAYPOINT_LLM_RECORD_CONTENT` is set.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, StatusCode

from waypoint_common.errors import FinalError, TransientError
from waypoint_common.retries import retrying
from waypoint_orchestrator.budgets import BudgetLedger
from waypoint_orchestrator.settings import OrchestratorSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("waypoint.orchestrator")
meter = metrics.get_meter("waypoint.orchestrator")

TOKEN_USAGE = meter.create_histogram(
    "gen_ai.client.token.usage",
    unit="{token}",
    description="Tokens a model call used, by type (input, output)",
    explicit_bucket_boundaries_advisory=[1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576],
)
OPERATION_DURATION = meter.create_histogram(
    "gen_ai.client.operation.duration",
    unit="s",
    description="Duration of a model call attempt",
    # The GenAI conventions' advised boundaries.
    explicit_bucket_boundaries_advisory=[
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ],
)
MODEL_COST = meter.create_counter(
    "waypoint.model.cost", unit="USD", description="What model calls cost, at the configured prices"
)
# Characters per token, for the reservation's prompt estimate (generous: fewer chars per token
# means a larger estimate).
CHARS_PER_TOKEN = 3


class ModelUnavailable(TransientError):
    """The model did not answer (connection, timeout, 429, 5xx): trying again may help."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelFailed(FinalError):
    """The model answered, but not usefully: it refused, its output was cut off, or the endpoint
    refused the request (4xx). Trying the same call again would not help."""


@dataclass
class ModelAnswer:
    content: str | None
    finish_reason: str
    input_tokens: int
    output_tokens: int
    model: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class ModelClient:
    """The process's client for the configured endpoint (one connection pool)."""

    def __init__(self, settings: OrchestratorSettings, ledger: BudgetLedger) -> None:
        assert settings.llm_base_url is not None
        self.settings = settings
        self.ledger = ledger
        self.model = settings.llm_model
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else "unused"
        self._openai = openai.AsyncOpenAI(
            base_url=str(settings.llm_base_url),
            api_key=key,
            timeout=settings.llm_timeout_seconds,
            max_retries=0,  # retries happen in `chat`, once
        )
        self.server = settings.llm_base_url.host or ""
        # The SDK's debug logs show request options; whatever the service's level, they stay off.
        logging.getLogger("openai").setLevel(max(logging.INFO, logging.getLogger("openai").level))

    async def aclose(self) -> None:
        await self._openai.close()

    async def chat(
        self,
        trip_id: str,
        call_id: str,
        messages: list[ChatCompletionMessageParam],
        *,
        response_format: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> ModelAnswer:
        """One model call (tried up to `llm_attempts` times), charged to the trip's token budget.

        `call_id` names the call within the trip (the same call, resumed, is not charged twice).
        Raises `BudgetExhausted` before a call the budget cannot cover, `ModelUnavailable` when
        every try failed on the way, `ModelFailed` for an answer that cannot be used.
        """
        max_tokens = self.settings.llm_max_output_tokens
        prompt = json.dumps([messages, response_format, tools], default=str)
        reserved = len(prompt) // CHARS_PER_TOKEN + max_tokens
        attempt_number = 0
        async for attempt in retrying(
            attempts=self.settings.llm_attempts,
            initial_wait=0.2,
            max_wait=self.settings.retry_max_wait_seconds,
        ):
            with attempt:
                attempt_number += 1
                charge_id = f"llm:{call_id}:{attempt_number}"
                await self.ledger.charge(trip_id, "tokens", reserved, charge_id)
                answer: ModelAnswer | None = None
                try:
                    answer = await self._attempt(messages, response_format, tools, max_tokens)
                finally:
                    used = answer.input_tokens + answer.output_tokens if answer is not None else 0
                    await self.ledger.settle_tokens(
                        trip_id,
                        f"{charge_id}:settled",
                        reserved=reserved,
                        used=used,
                        cost_usd=self._cost(answer),
                    )
                if answer.finish_reason == "refusal":
                    raise ModelFailed("the model refused to answer")
                if answer.finish_reason == "length":
                    raise ModelFailed("the model's output was cut off (finish_reason: length)")
                if answer.finish_reason == "content_filter":
                    raise ModelFailed("the model's output was withheld (finish_reason: content_filter)")
                return answer
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    def _cost(self, answer: ModelAnswer | None) -> float:
        if answer is None:
            return 0.0
        return (
            answer.input_tokens * self.settings.llm_input_price_per_million
            + answer.output_tokens * self.settings.llm_output_price_per_million
        ) / 1_000_000

    async def _attempt(
        self,
        messages: list[ChatCompletionMessageParam],
        response_format: dict[str, Any] | None,
        tools: list[dict[str, Any]] | None,
        max_tokens: int,
    ) -> ModelAnswer:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": self.model,
            "gen_ai.request.max_tokens": max_tokens,
            "server.address": self.server,
        }
        metric_attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": self.model,
        }
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"chat {self.model}", kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
        ) as span:
            if self.settings.llm_record_content:
                span.set_attribute("gen_ai.input.messages", json.dumps(messages, default=str))
            extra: dict[str, Any] = {}
            if response_format is not None:
                extra["response_format"] = response_format
            if tools:
                extra["tools"] = tools
            try:
                completion = await self._openai.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=max_tokens, **extra
                )
            except openai.APIStatusError as exc:
                kind = f"http_{exc.status_code}"
                self._failed(span, kind, started, metric_attributes)
                if exc.status_code == 429 or exc.status_code >= 500:
                    raise ModelUnavailable(
                        f"the model endpoint answered {exc.status_code}",
                        retry_after=_retry_after(exc.response.headers.get("retry-after")),
                    ) from None
                raise ModelFailed(f"the model endpoint refused the call ({exc.status_code})") from None
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                kind = "timeout" if isinstance(exc, openai.APITimeoutError) else "connection"
                self._failed(span, kind, started, metric_attributes)
                raise ModelUnavailable(f"the model endpoint could not be reached ({kind})") from None
            except (openai.APIError, ValueError) as exc:  # an answer that could not be read (not JSON)
                self._failed(span, type(exc).__name__, started, metric_attributes)
                raise ModelUnavailable("the model endpoint's answer could not be read") from None
            duration = time.perf_counter() - started
            if not completion.choices:
                self._failed(span, "no_choices", started, metric_attributes)
                raise ModelUnavailable("the model endpoint answered without a choice")
            choice = completion.choices[0]
            usage = completion.usage
            answer = ModelAnswer(
                content=choice.message.content,
                finish_reason=str(choice.finish_reason or "stop"),
                input_tokens=usage.prompt_tokens if usage is not None else 0,
                output_tokens=usage.completion_tokens if usage is not None else 0,
                model=completion.model,
                tool_calls=[c.model_dump() for c in choice.message.tool_calls or []],
            )
            if choice.message.refusal:
                answer.finish_reason = "refusal"
            span.set_attributes(
                {
                    "gen_ai.response.model": answer.model,
                    "gen_ai.response.finish_reasons": [answer.finish_reason],
                    "gen_ai.usage.input_tokens": answer.input_tokens,
                    "gen_ai.usage.output_tokens": answer.output_tokens,
                }
            )
            if self.settings.llm_record_content and answer.content is not None:
                span.set_attribute("gen_ai.output.messages", answer.content)
            response_attributes = {**metric_attributes, "gen_ai.response.model": answer.model}
            OPERATION_DURATION.record(duration, response_attributes)
            TOKEN_USAGE.record(answer.input_tokens, {**response_attributes, "gen_ai.token.type": "input"})
            TOKEN_USAGE.record(answer.output_tokens, {**response_attributes, "gen_ai.token.type": "output"})
            MODEL_COST.add(self._cost(answer), response_attributes)
            if answer.finish_reason in ("refusal", "length", "content_filter"):
                span.set_attribute("error.type", answer.finish_reason)
                span.set_status(StatusCode.ERROR, answer.finish_reason)
            return answer

    def _failed(self, span: trace.Span, kind: str, started: float, attributes: dict[str, str]) -> None:
        span.set_attribute("error.type", kind)
        span.set_status(StatusCode.ERROR, kind)
        OPERATION_DURATION.record(time.perf_counter() - started, {**attributes, "error.type": kind})
        log.info("model call failed", extra={"error_type": kind})


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
