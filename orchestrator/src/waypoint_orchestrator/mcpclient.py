"""The MCP client the orchestrator calls tools with: the SDK's `Client`, its output-schema check
done by a compiled validator.

The SDK checks every structured tool result against the tool's output schema (as it should: a
tool server's answer is input to us). It does so with `jsonschema`, which walks the schema in
Python for every result: about 0.7 ms for a five-offer flight search, most of the client's CPU
per call. `CompiledValidationClient` keeps the check and the SDK's place for it (the session's
per-tool validator cache, which the SDK evicts when a tool's listed schema changes) and puts a
jsonschema-rs validator there, compiled once per schema: a result that passes costs a few
microseconds. A result that fails is handed to the SDK's own `jsonschema` validator, so the
error raised (`RuntimeError: Invalid structured content returned by tool …`) is the SDK's, word
for word. A schema jsonschema-rs cannot compile is left to `jsonschema` alone.

This overrides one private method of `mcp.client.session.ClientSession` (`mcp` is pinned);
`tests/test_output_validation.py` checks that the compiled validator is the one in use, and that a
result breaking its schema is still refused.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import jsonschema_rs
import orjson
from mcp import Client
from mcp.client.session import ClientSession

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=256)
def _compile(schema_json: bytes) -> jsonschema_rs.Validator | None:
    """One compiled validator per distinct schema (every connection to every replica of a
    server lists the same schemas), or None when jsonschema-rs cannot compile it."""
    try:
        return jsonschema_rs.validator_for(orjson.loads(schema_json))
    except Exception as exc:  # an unsupported schema: the SDK's own validator does it all
        log.warning("output schema left to jsonschema (jsonschema-rs cannot compile it): %s", exc)
        return None


def compiled_validator(schema: dict[str, Any]) -> jsonschema_rs.Validator | None:
    """The compiled validator for `schema` (cached by its canonical JSON)."""
    return _compile(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))


class CompiledOutputValidator:
    """What the SDK's session asks of a cached output validator (`iter_errors`): no errors when
    the compiled validator accepts the result, else the reference (`jsonschema`) validator's."""

    def __init__(self, compiled: jsonschema_rs.Validator, reference: Validator) -> None:
        self.compiled = compiled
        self.reference = reference

    def iter_errors(self, instance: Any) -> Iterator[Any]:
        if self.compiled.is_valid(instance):
            return iter(())
        return iter(self.reference.iter_errors(instance))


class CompiledValidationSession(ClientSession):
    """A `ClientSession` whose per-tool output validators are `CompiledOutputValidator`s."""

    def _output_schema_validator(self, name: str, output_schema: dict[str, Any]) -> Validator:
        cached: object = self._tool_output_validators.get(name)
        if isinstance(cached, CompiledOutputValidator):
            return cast("Validator", cached)
        # The SDK's own: checks the schema (RuntimeError when it is not a valid JSON Schema).
        reference = super()._output_schema_validator(name, output_schema)
        compiled = compiled_validator(output_schema)
        if compiled is None:
            return reference
        validator = cast("Validator", CompiledOutputValidator(compiled, reference))
        self._tool_output_validators[name] = validator
        return validator


class CompiledValidationClient(Client):
    """`mcp.Client` validating structured results with `CompiledValidationSession`."""

    async def __aenter__(self) -> CompiledValidationClient:
        await super().__aenter__()
        session = self.session
        if type(session) is ClientSession:
            session.__class__ = CompiledValidationSession
        return self
