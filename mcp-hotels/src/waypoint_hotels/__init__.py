"""mcp-hotels: hotel search and booking over MCP."""
