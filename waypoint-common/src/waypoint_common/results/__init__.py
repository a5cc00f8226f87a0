"""What the tool servers answer, one pydantic model per structured result.

One definition serves both ends: a tool server declares its output schema from these models
(the SDK publishes it in `tools/list` and checks every result against it), and the
orchestrator's agents validate every answer back into the same models before using it. A
field renamed on one side is a type error on the other, not a `KeyError` in production.
"""
