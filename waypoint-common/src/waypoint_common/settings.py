"""Settings shared by every Waypoint service, read from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, RedisDsn, SecretStr, TypeAdapter, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from waypoint_common.connections import cluster_url

SERVICE_TOKEN_VARIABLE = "WAYPOINT_SERVICE_TOKEN"
SERVICE_TOKEN_FILE_VARIABLE = "WAYPOINT_SERVICE_TOKEN_FILE"
MIN_SERVICE_TOKEN_LENGTH = 16
_PLACEHOLDERS = {"changeme", "change-me", "change_me", "secret", "password", "token", "service-token"}


_SINGLE_REDIS = TypeAdapter(RedisDsn)


def _redis_url(value: str) -> str:
    """A single Redis (`redis://`, `rediss://`, checked and completed as pydantic's `RedisDsn`)
    or a Redis Cluster (`redis+cluster://host:port,host:port`, see `connections.py`)."""
    if cluster_url(value) is not None:  # raises ValueError when malformed
        return value
    return str(_SINGLE_REDIS.validate_python(value))


RedisUrl = Annotated[str, AfterValidator(_redis_url)]


class ServiceSettings(BaseSettings):
    """What every service process reads from its environment.

    Field names map to upper-case environment variables with the `WAYPOINT_` prefix,
    except where an alias names a standard variable (`REDIS_URL`, `OTEL_*`).
    """

    model_config = SettingsConfigDict(env_prefix="WAYPOINT_", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 inside a container.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    redis_url: RedisUrl = Field(
        "redis://127.0.0.1:6380/0",
        validation_alias="REDIS_URL",
        description=(
            "Redis holding bookings, idempotency records and trip state: redis://host:port/0, or a "
            "Redis Cluster as redis+cluster://host:port,host:port (rediss:// and rediss+cluster:// for TLS)."
        ),
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
    service_token: SecretStr | None = Field(
        None,
        description=(
            "The service credential: tool servers require 'Authorization: Bearer <token>' on /mcp "
            "and /admin, and the orchestrator sends it. Required in production; at least "
            f"{MIN_SERVICE_TOKEN_LENGTH} characters, placeholders refused. Never logged."
        ),
    )
    redis_spans: bool = Field(
        True,
        description=(
            "A span for every Redis command (the tool servers' booking and idempotency writes). "
            "Redis command durations are metrics either way (db.client.operation.duration)."
        ),
    )
    service_token_file: Path | None = Field(
        None,
        description=(
            "A file holding the service token (a compose or Kubernetes secret), read at start; "
            "instead of WAYPOINT_SERVICE_TOKEN."
        ),
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("service_token", "service_token_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `VAR=` (as compose writes `${VAR:-}`) means "not set", like leaving it out.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _resolve_service_token(self) -> Self:
        if self.service_token_file is not None:
            if self.service_token is not None:
                raise ValueError(f"set {SERVICE_TOKEN_VARIABLE} or {SERVICE_TOKEN_FILE_VARIABLE}, not both")
            try:
                text = self.service_token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"{SERVICE_TOKEN_FILE_VARIABLE}: cannot read {self.service_token_file}: {exc.strerror}"
                ) from None
            self.service_token = SecretStr(text) if text else None
        token = self.service_token.get_secret_value() if self.service_token is not None else None
        if token is not None and (
            token.strip() != token
            or len(token) < MIN_SERVICE_TOKEN_LENGTH
            or len(set(token)) < 5  # "xxxxxxxxxxxxxxxx", "abababababababab"
            or token.lower() in _PLACEHOLDERS
        ):
            raise ValueError(
                f"{SERVICE_TOKEN_VARIABLE} is a placeholder or too weak: use at least "
                f"{MIN_SERVICE_TOKEN_LENGTH} random characters (e.g. `openssl rand -hex 32`)"
            )
        return self

    def startup_problem(self) -> str | None:
        """Why this process must not start with these settings, or None."""
        if self.environment == "production" and self.service_token is None:
            return (
                f"{SERVICE_TOKEN_VARIABLE} (or {SERVICE_TOKEN_FILE_VARIABLE}) is required when "
                "WAYPOINT_ENVIRONMENT=production: tool servers accept only callers holding it"
            )
        return None


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
