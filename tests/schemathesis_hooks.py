"""Schemathesis hooks for tests/test_api_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key must not be reused with another body (that is a documented 422), which no
schema can say; the fuzzer repeats generated keys across different bodies (its examples and
coverage phases use the same values), so each request it sends gets a key of its own. Replays
and mismatches have tests of their own (tests/test_trips_api.py, tests/test_edge.py).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.match(key):
        # Still a valid key (a prefix, then cut to the limit), now unique to this request.
        headers["Idempotency-Key"] = (uuid.uuid4().hex + key)[:255]
        case.headers = headers
