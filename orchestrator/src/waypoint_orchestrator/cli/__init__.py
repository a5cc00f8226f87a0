"""`waypoint`: the trip API from a terminal or a script.

A client of the HTTP API only (`api.py`): it imports nothing of the server, so it starts quickly
and reads the API's documents as JSON. `app.py` has the commands and their exit codes,
`progress.py` the live view of a trip's events, `render.py` the trip as a person reads it.
"""
