"""`/v1/trips`: accept, read, follow, confirm and cancel trips.

One router for the app; the routes live by responsibility: `create` (accepting a trip, with
`Idempotency-Key`), `reads` (reading and following one), `commands` (confirm, cancel), with
`waits` (`Prefer: wait`) and `common` (what they share) beside them.
"""

from __future__ import annotations

from fastapi import APIRouter

from waypoint_orchestrator.api.routes import commands, create, reads

PREFIX = "/v1/trips"

router = APIRouter()
for part in (create.router, reads.router, commands.router):
    router.include_router(part, prefix=PREFIX, tags=["trips"])
