"""Every bound on operator input, in one place: validation, the API schema, the editor's
spin boxes and the CLI all read them from here."""

from __future__ import annotations

MAX_STEPS = 40  # never more than the default pool; a smaller pool lowers it further
MAX_TEXT = 120  # company, domain, industry and step names
MAX_LATENCY_MS = 60_000  # a step's simulated latency
MAX_CUSTOMERS = 10_000  # per run
MAX_CUSTOMERS_SHOWN = 1_000  # per-customer results in a run's answer (the summary counts all)
MAX_THINK_TIME_MS = 10_000  # between two steps of a batch-chained customer
MAX_CONCURRENCY = 200  # customers in flight at once within one run
DEFAULT_CONCURRENCY = 10
MAX_PACING_MS = 2_000  # demo pacing per phase
MIN_TRAFFIC_RATE = 0.1  # journeys per second of continuous traffic
# Above what the bare chain carries on this machine kind (≈ 1,000 j/s): the limit is the
# fleet, shown as "behind", never a number the panel refuses.
MAX_TRAFFIC_RATE = 2_000.0
MAX_TRAFFIC_IN_FLIGHT = 512  # journeys of continuous traffic in flight; beyond: skipped, 'behind'
# The panel's hop calls at once (app/service/hop_client.py): its traffic in flight and twice a
# batch's concurrency, the bound its aiohttp connector had for the same calls.
MAX_HOP_CALLS = MAX_CONCURRENCY * 2 + MAX_TRAFFIC_IN_FLIGHT
