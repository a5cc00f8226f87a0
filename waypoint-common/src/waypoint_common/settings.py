"""Settings shared by every Waypoint service, read from the environment (pydantic-settings)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RedisDsn, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service process reads from its environment.

    Field names map to upper-case environment variables with the `WAYPOINT_` prefix,
    except where an alias names a standard variable (`REDIS_URL`, `OTEL_*`).
    """

    model_config = SettingsConfigDict(env_prefix="WAYPOINT_", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 inside a container.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    redis_url: RedisDsn = Field(
        RedisDsn("redis://127.0.0.1:6380/0"),
        validation_alias="REDIS_URL",
        description="Redis holding bookings, idempotency records and trip state.",
    )
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    otel_endpoint: str | None = Field(
        None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OTLP/HTTP endpoint of the collector; telemetry is exported only when set.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Extra Host header values accepted by MCP endpoints (DNS-rebinding protection), "
            "for example 'mcp-flights:8000' in compose. Comma-separated in the environment."
        ),
    )
    admin_token: str | None = Field(
        None, description="When set, admin endpoints require 'Authorization: Bearer <token>'."
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("admin_token")
    @classmethod
    def _no_placeholder_token(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() in {"", "changeme", "change-me", "secret"}:
            raise ValueError("WAYPOINT_ADMIN_TOKEN is a placeholder; set a real token or leave it unset")
        return value


class ToolServerSettings(ServiceSettings):
    """Settings of an MCP tool server."""

    faults: str = Field(
        "",
        description=(
            "Fault injection at start-up, as JSON: {tool name or '*': {error_rate, latency_ms, "
            "hang_rate, hang_seconds, lose_response_rate}}. Empty means no faults."
        ),
    )
    fault_seed: int | None = Field(None, description="Seed for the fault dice, for reproducible runs.")
