"""mcp-flights: flight search and booking over MCP."""
