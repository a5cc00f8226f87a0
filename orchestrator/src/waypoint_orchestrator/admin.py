"""`waypoint-admin`: make, list and revoke API keys (in the Redis that `REDIS_URL` names).

    waypoint-admin keys create --tenant acme --scope trips:read --scope trips:write
    waypoint-admin keys list [--tenant acme] [--json]
    waypoint-admin keys revoke <key id>

`create` prints the key once on stdout (only the key, so a script can capture it) and what
was stored on stderr; the key itself is never stored, so a lost key is revoked and replaced.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, TypeVar

import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from waypoint_common.connections import connect_redis
from waypoint_common.settings import ServiceSettings
from waypoint_orchestrator.apikeys import SCOPES, ApiKey, ApiKeyStore, InvalidKeyRequest, KeyLimits

T = TypeVar("T")

app = typer.Typer(
    name="waypoint-admin", help="Administer Waypoint: API keys.", no_args_is_help=True, add_completion=False
)
keys = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys, name="keys")


def _run(action: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    async def run() -> T:
        redis = connect_redis(str(ServiceSettings().redis_url))
        try:
            return await action(ApiKeyStore(redis))
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        typer.echo(f"waypoint-admin: Redis is unreachable ({type(exc).__name__}); check REDIS_URL", err=True)
        raise typer.Exit(3) from None


def _describe(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "tenant": key.tenant,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "limits": {k: v for k, v in asdict(key.limits).items() if v is not None},
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
    }


@keys.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for (its trips are the tenant's).")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help=f"Repeat for each scope: {', '.join(SCOPES)}. Default: all three."),
    ] = None,
    name: Annotated[str, typer.Option(help="A label for listings.")] = "",
    requests_per_minute: Annotated[
        int | None, typer.Option(help="Request rate limit (default: WAYPOINT_KEY_REQUESTS_PER_MINUTE).")
    ] = None,
    concurrent_waits: Annotated[
        int | None,
        typer.Option(
            help="Event streams and Prefer: wait requests at once (default: WAYPOINT_KEY_CONCURRENT_WAITS)."
        ),
    ] = None,
    daily_spend_usd: Annotated[
        float | None, typer.Option(help="Booking spend a UTC day (default: WAYPOINT_KEY_DAILY_SPEND_USD).")
    ] = None,
) -> None:
    """Make a key and print it (once)."""
    limits = KeyLimits(
        requests_per_minute=requests_per_minute,
        concurrent_waits=concurrent_waits,
        daily_spend_usd=daily_spend_usd,
    )
    try:
        presented, key = _run(lambda store: store.create(tenant, scope or SCOPES, name=name, limits=limits))
    except InvalidKeyRequest as exc:
        typer.echo(f"waypoint-admin: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(_describe(key)), err=True)
    typer.echo(presented)


@keys.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """List keys (never their secrets): id, tenant, scopes, limits, created, last used."""
    found = _run(lambda store: store.list_keys(tenant))
    if as_json:
        typer.echo(json.dumps([_describe(k) for k in found], indent=2))
        return
    if not found:
        typer.echo("no keys", err=True)
        return
    typer.echo(f"{'ID':<13} {'TENANT':<20} {'SCOPES':<36} {'LAST USED':<26} NAME")
    for key in found:
        scopes = ",".join(sorted(key.scopes))
        typer.echo(f"{key.id:<13} {key.tenant:<20} {scopes:<36} {key.last_used_at or '-':<26} {key.name}")


@keys.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")]) -> None:
    """Revoke a key at once."""
    if not _run(lambda store: store.revoke(key_id)):
        typer.echo(f"waypoint-admin: no key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}", err=True)


def main() -> int:
    try:
        app()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
