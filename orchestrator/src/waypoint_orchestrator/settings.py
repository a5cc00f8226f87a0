"""Orchestrator settings, from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from waypoint_common.settings import ServiceSettings
from waypoint_orchestrator.models import Limits, TripLimits


class OrchestratorSettings(ServiceSettings):
    """The orchestrator's settings: the shared ones plus where the tool servers are."""

    mcp_flights_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8101/mcp"), validation_alias="MCP_FLIGHTS_URL"
    )
    mcp_hotels_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8102/mcp"), validation_alias="MCP_HOTELS_URL"
    )
    mcp_weather_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8103/mcp"), validation_alias="MCP_WEATHER_URL"
    )
    mcp_restaurants_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8104/mcp"), validation_alias="MCP_RESTAURANTS_URL"
    )
    jaeger_ui_url: AnyHttpUrl | None = Field(None, validation_alias="JAEGER_UI_URL")
    workers: int = Field(4, ge=0, le=64, description="Concurrent trip workers in this process (0: API only).")
    max_wait_seconds: float = Field(60, gt=0, le=300, description="Cap on `Prefer: wait=N`.")
    tool_timeout_seconds: float = Field(10, gt=0, le=120, description="Timeout of one tool call attempt.")
    tool_attempts: int = Field(4, ge=1, le=10, description="Tries per tool call (transient failures only).")
    retry_max_wait_seconds: float = Field(2.0, gt=0, le=60, description="Cap on the backoff between tries.")
    breaker_failures: int = Field(5, ge=1, le=1000, description="Consecutive failures that open a breaker.")
    breaker_cooldown_seconds: float = Field(
        10, gt=0, le=600, description="Open breaker's wait before a probe."
    )
    retry_budget_ratio: float = Field(
        0.5, ge=0, le=10, description="Retries allowed per first attempt to a tool server (retry budget)."
    )
    retry_budget_per_second: float = Field(
        2, ge=0, le=1000, description="Retries allowed a second regardless."
    )
    tool_resolve_seconds: float = Field(
        5, gt=0, le=300, description="How often a tool server's name is resolved again (its replicas)."
    )
    tool_eject_seconds: float = Field(
        10, gt=0, le=600, description="How long a replica that could not be reached gets no calls."
    )
    tool_hosts_file: Path | None = Field(
        None, description="A hosts file (`address name...` lines) read instead of DNS for tool servers."
    )
    search_cache_seconds: float = Field(
        900,
        ge=0,
        le=86_400,
        description="How long a good search answer may stand in for a server that is down.",
    )
    # The language model: optional. Without a base URL, no model is called and every agent is
    # deterministic.
    llm_base_url: AnyHttpUrl | None = Field(
        None, description="An OpenAI-compatible Chat Completions endpoint (…/v1); unset: no model."
    )
    llm_model: str = Field("gpt-4o-mini", min_length=1, max_length=200, description="The model to ask.")
    llm_api_key: SecretStr | None = Field(
        None, description="The endpoint's API key (a secret: never logged)."
    )
    llm_timeout_seconds: float = Field(30, gt=0, le=600, description="Timeout of one model call attempt.")
    llm_attempts: int = Field(3, ge=1, le=10, description="Tries per model call (transient failures only).")
    llm_max_output_tokens: int = Field(
        1024, ge=16, le=65_536, description="Output tokens one model call may produce (`max_tokens`)."
    )
    llm_input_price_per_million: float = Field(
        0, ge=0, le=10_000, description="USD per million input tokens, for the cost in `usage`."
    )
    llm_output_price_per_million: float = Field(
        0, ge=0, le=10_000, description="USD per million output tokens, for the cost in `usage`."
    )
    llm_specialists: set[Literal["flights", "hotels", "weather", "dining"]] = Field(
        default_factory=set,
        description="Specialists whose model chooses their read-only tool calls (a JSON list); "
        "the others search by themselves.",
    )
    llm_narrative: bool = Field(
        False, description="Let the model write the itinerary's narrative (checked against the itinerary)."
    )
    llm_record_content: bool = Field(
        False, description="Put prompts and completions on spans (off: they may hold personal data)."
    )

    @field_validator("llm_base_url", "llm_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (compose passes `${WAYPOINT_LLM_BASE_URL:-}` through) means unset."""
        return None if value == "" else value

    # Per-trip budgets: the default for a request that names none, and the most one may ask for.
    budget_steps: int = Field(40, ge=1, description="Default step budget per trip.")
    budget_steps_cap: int = Field(200, ge=1)
    budget_tool_calls: int = Field(60, ge=1, description="Default tool-call budget per trip (retries count).")
    budget_tool_calls_cap: int = Field(500, ge=1)
    budget_tokens: int = Field(50_000, ge=0, description="Default language-model token budget per trip.")
    budget_tokens_cap: int = Field(1_000_000, ge=0)
    budget_wall_seconds: float = Field(300, gt=0, description="Default wall-time budget per trip.")
    budget_wall_seconds_cap: float = Field(3600, gt=0)
    # The edge: what one API key may do unless the key says otherwise (`waypoint-admin keys create`).
    key_requests_per_minute: int = Field(
        300, ge=1, le=100_000, description="Requests a minute per API key (429 beyond)."
    )
    key_concurrent_waits: int = Field(
        20,
        ge=0,
        le=10_000,
        description="Event streams and `Prefer: wait` requests one API key may hold open at once.",
    )
    key_daily_spend_usd: float = Field(
        20_000, ge=0, le=10_000_000, description="Booking spend per API key and UTC day."
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request body (413 beyond)."
    )
    job_lease_seconds: float = Field(
        60,
        gt=0,
        le=3600,
        description="A job idle this long (its worker died) is taken over by another worker.",
    )
    # The orchestrator's Redis use is bookkeeping (trip documents, events, budgets, jobs): a
    # span per command would be most of a trip's trace and of its telemetry cost.
    redis_spans: bool = Field(
        False,
        description=(
            "A span for every Redis command the orchestrator sends (off: a trip's trace shows its "
            "steps, tool calls and tool servers; Redis durations are metrics). On for debugging."
        ),
    )

    # Switches for measuring only (`make bench`: what the hardening costs). Never off in
    # production: a production process refuses to start with any of them off.
    budgets_enabled: bool = Field(
        True, description="Charge and enforce per-trip budgets (off: for measuring only)."
    )
    idempotency_keys_enabled: bool = Field(
        True, description="Honour Idempotency-Key on POST /v1/trips (off: ignored; for measuring only)."
    )
    breakers_enabled: bool = Field(
        True, description="Circuit breakers per tool server (off: never open; for measuring only)."
    )

    def startup_problem(self) -> str | None:
        """The shared checks, and the measuring switches: all on in production."""
        problem = super().startup_problem()
        if problem is not None or self.environment != "production":
            return problem
        off = [
            f"WAYPOINT_{name.upper()}"
            for name in ("budgets_enabled", "idempotency_keys_enabled", "breakers_enabled")
            if not getattr(self, name)
        ]
        if off:
            return f"{', '.join(off)}=false is for measuring only, never with WAYPOINT_ENVIRONMENT=production"
        return None

    def limits_for(self, requested: TripLimits | None) -> tuple[Limits, list[tuple[str, str]]]:
        """The trip's limits (defaults overridden by the request), and the overrides above a cap."""
        requested = requested or TripLimits()
        table = {
            "max_steps": (requested.max_steps, self.budget_steps, self.budget_steps_cap),
            "max_tool_calls": (requested.max_tool_calls, self.budget_tool_calls, self.budget_tool_calls_cap),
            "max_tokens": (requested.max_tokens, self.budget_tokens, self.budget_tokens_cap),
            "max_wall_seconds": (
                requested.max_wall_seconds,
                self.budget_wall_seconds,
                self.budget_wall_seconds_cap,
            ),
        }
        limits: dict[str, float] = {}
        refused: list[tuple[str, str]] = []
        for name, (asked, default, cap) in table.items():
            if asked is not None and asked > cap:
                refused.append((f"limits.{name}", f"{asked:g} is above this server's cap of {cap:g}"))
            limits[name] = min(asked, cap) if asked is not None else default
        return Limits.model_validate(limits), refused
