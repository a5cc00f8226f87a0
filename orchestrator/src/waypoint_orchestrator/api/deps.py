"""What the routes need, built once in the app's lifespan and handed out by `Depends`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from waypoint_orchestrator.apikeys import ApiKeyStore
from waypoint_orchestrator.budgets import BudgetLedger
from waypoint_orchestrator.events import EventHub
from waypoint_orchestrator.idempotency_keys import IdempotencyKeys
from waypoint_orchestrator.jobs import JobQueue
from waypoint_orchestrator.quotas import SpendLedger, WaitSlots
from waypoint_orchestrator.settings import OrchestratorSettings
from waypoint_orchestrator.store import TripStore


@dataclass(frozen=True)
class Services:
    settings: OrchestratorSettings
    store: TripStore
    queue: JobQueue
    idempotency: IdempotencyKeys
    ledger: BudgetLedger
    keys: ApiKeyStore
    waits: WaitSlots
    spend: SpendLedger
    events: EventHub


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
