"""HTTP routes of the trip API."""
