"""The specialist agents: one per tool server, each calling its tools through a pooled MCP client."""
