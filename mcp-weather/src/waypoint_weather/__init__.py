"""mcp-weather: daily forecasts over MCP."""
