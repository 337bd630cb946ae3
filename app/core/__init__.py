"""The panel's core: ports, services, journeys, runs. Never imports Qt (a test enforces it)."""
