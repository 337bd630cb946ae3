"""A local OTLP/HTTP receiver for the export benchmark, in its own process (so its CPU is not
counted as the panel's): decodes every request with the official messages and counts.

    .venv/bin/python bench/otlp_sink.py PORT
    GET /count -> {"spans": n, "logs": n, "points": n (metric data points)}
"""

from __future__ import annotations

import sys

from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

COUNTS = {"spans": 0, "logs": 0, "events": 0, "points": 0}


async def traces(request: web.Request) -> web.Response:
    req = ExportTraceServiceRequest.FromString(await request.read())
    COUNTS["spans"] += sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    return web.Response(content_type="application/x-protobuf")


async def logs(request: web.Request) -> web.Response:
    req = ExportLogsServiceRequest.FromString(await request.read())
    COUNTS["logs"] += sum(len(s.log_records) for r in req.resource_logs for s in r.scope_logs)
    return web.Response(content_type="application/x-protobuf")


async def metrics(request: web.Request) -> web.Response:
    req = ExportMetricsServiceRequest.FromString(await request.read())
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                COUNTS["points"] += len(getattr(m, m.WhichOneof("data")).data_points)
    return web.Response(content_type="application/x-protobuf")


async def count(request: web.Request) -> web.Response:
    return web.json_response(COUNTS)


def main() -> None:
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/logs", logs)
    app.router.add_post("/v1/metrics", metrics)
    app.router.add_get("/count", count)
    print("sink ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
