"""The Waypoint orchestrator: the public trip API."""
