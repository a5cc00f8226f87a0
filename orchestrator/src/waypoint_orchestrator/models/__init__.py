"""The trip API's data: what a client sends (`request`), and the trip as it is stored and
answered (`trip`). Everything is importable from here."""

from __future__ import annotations

from waypoint_orchestrator.models.request import (
    Budget as Budget,
)
from waypoint_orchestrator.models.request import (
    CurrencyCode as CurrencyCode,
)
from waypoint_orchestrator.models.request import (
    DiningWish as DiningWish,
)
from waypoint_orchestrator.models.request import (
    GateResult as GateResult,
)
from waypoint_orchestrator.models.request import (
    Interest as Interest,
)
from waypoint_orchestrator.models.request import (
    JsonBool as JsonBool,
)
from waypoint_orchestrator.models.request import (
    JsonDate as JsonDate,
)
from waypoint_orchestrator.models.request import (
    NumberCheck as NumberCheck,
)
from waypoint_orchestrator.models.request import (
    PlaceRef as PlaceRef,
)
from waypoint_orchestrator.models.request import (
    Problem as Problem,
)
from waypoint_orchestrator.models.request import (
    ReadBy as ReadBy,
)
from waypoint_orchestrator.models.request import (
    ResolvedTrip as ResolvedTrip,
)
from waypoint_orchestrator.models.request import (
    RouterDecision as RouterDecision,
)
from waypoint_orchestrator.models.request import (
    ShortText as ShortText,
)
from waypoint_orchestrator.models.request import (
    TripFields as TripFields,
)
from waypoint_orchestrator.models.request import (
    TripKind as TripKind,
)
from waypoint_orchestrator.models.request import (
    TripLimits as TripLimits,
)
from waypoint_orchestrator.models.request import (
    TripRequest as TripRequest,
)
from waypoint_orchestrator.models.request import (
    jsonable as jsonable,
)
from waypoint_orchestrator.models.trip import (
    SETTLED_STATUSES as SETTLED_STATUSES,
)
from waypoint_orchestrator.models.trip import (
    BookingRecord as BookingRecord,
)
from waypoint_orchestrator.models.trip import (
    BudgetUse as BudgetUse,
)
from waypoint_orchestrator.models.trip import (
    CostLine as CostLine,
)
from waypoint_orchestrator.models.trip import (
    Itinerary as Itinerary,
)
from waypoint_orchestrator.models.trip import (
    ItineraryDay as ItineraryDay,
)
from waypoint_orchestrator.models.trip import (
    Limits as Limits,
)
from waypoint_orchestrator.models.trip import (
    PlannedDinner as PlannedDinner,
)
from waypoint_orchestrator.models.trip import (
    SpendAuthority as SpendAuthority,
)
from waypoint_orchestrator.models.trip import (
    StepRecord as StepRecord,
)
from waypoint_orchestrator.models.trip import (
    StepStatus as StepStatus,
)
from waypoint_orchestrator.models.trip import (
    Termination as Termination,
)
from waypoint_orchestrator.models.trip import (
    TerminationReason as TerminationReason,
)
from waypoint_orchestrator.models.trip import (
    Trip as Trip,
)
from waypoint_orchestrator.models.trip import (
    TripStatus as TripStatus,
)
from waypoint_orchestrator.models.trip import (
    TripUsage as TripUsage,
)
from waypoint_orchestrator.models.trip import (
    Used as Used,
)
