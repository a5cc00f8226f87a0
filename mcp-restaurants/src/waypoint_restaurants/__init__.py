"""mcp-restaurants: restaurant search and table reservations over MCP."""
