"""A bare aiohttp forwarding chain: the yardstick for the panel's step services.

Each hop is a process with one aiohttp app and one kept-alive client: it reads the request
body, POSTs the very bytes to the next hop and answers with the next hop's answer (the last hop
answers `{}`). Nothing else: no identity, no checks, no trace context, no business event.
`BareChain` starts such a chain on given ports; `drive` sends customers through it closed-loop
at a concurrency, as the panel's simulate phase does. The client, of the hops and of the
driver, is aiohttp's (`aiohttp`: the yardstick the targets name) or the one the panel and its
services call hops with (`hop`: app/service/hop_client.py), so a step's own cost can be read
apart from the client's.

    .venv/bin/python bench/bare_chain.py --ports 8241-8245 --customers 3000 [--client hop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import ClientSession, TCPConnector

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.service.hop_client import HopClient  # noqa: E402

HOP = r"""
import asyncio, os, sys
from aiohttp import ClientSession, ClientTimeout, web
port, nxt, extra, client = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, sys.argv[5])
from app.service.hop_client import HopClient
RESULT = b'{"r":"' + b"x" * extra + b'","downstream":'  # a hop's own result, `extra` bytes
JSON = {"Content-Type": "application/json"}
os.nice(5)  # as the panel's services are
async def handle(request):
    body = await request.read()
    if not nxt:
        return web.Response(body=RESULT + b"null}", content_type="application/json")
    if client == "hop":
        answer = (await request.app["http"].post(nxt, body, JSON, 60)).body
    else:
        async with request.app["http"].post(
            f"http://127.0.0.1:{nxt}/process", data=body, headers=JSON
        ) as resp:
            answer = await resp.read()
    return web.Response(body=RESULT + answer + b"}", content_type="application/json")
async def main():
    app = web.Application()
    async def http(app):
        if client == "hop":
            app["http"] = hop = HopClient()
            yield
            await hop.aclose()
            return
        async with ClientSession(timeout=ClientTimeout(total=60)) as s:
            app["http"] = s
            yield
    app.cleanup_ctx.append(http)
    app.router.add_post("/process", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


class BareChain:
    """`result_bytes`: each hop adds a result of that size to the answer, as a step service
    does (0: the bare minimum, the downstream answer passed on as it came)."""

    def __init__(self, ports: list[int], result_bytes: int = 0, client: str = "aiohttp") -> None:
        self.ports = ports
        self.result_bytes = result_bytes
        self.client = client
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BareChain:
        for i, port in enumerate(self.ports):
            nxt = self.ports[i + 1] if i + 1 < len(self.ports) else 0
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    HOP,
                    str(port),
                    str(nxt),
                    str(self.result_bytes),
                    self.client,
                    str(ROOT),
                ],
                stdout=subprocess.PIPE,
            )
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


async def drive(
    port: int, body: bytes, customers: int, concurrency: int, client: str = "aiohttp"
) -> float:
    """Journeys per second through the chain starting at `port`."""
    gate = asyncio.Semaphore(concurrency)
    url = f"http://127.0.0.1:{port}/process"
    headers = {"Content-Type": "application/json"}
    hops = HopClient(concurrency * 2)
    async with ClientSession(connector=TCPConnector(limit=concurrency * 2)) as http:

        async def one() -> None:
            async with gate:
                if client == "hop":
                    await hops.post(port, body, headers, 60)
                    return
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()

        try:
            await asyncio.gather(*(one() for _ in range(min(50, customers))))  # warm connections
            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(customers)))
            return customers / (time.perf_counter() - t0)
        finally:
            await hops.aclose()


def main() -> None:
    from app.core.settings import parse_port_range

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="8241-8245")
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--result-bytes", type=int, default=0)
    ap.add_argument("--client", choices=("aiohttp", "hop"), default="aiohttp")
    ns = ap.parse_args()
    lo, hi = parse_port_range(ns.ports)
    body = os.urandom(1200).hex().encode()  # about a panel request's size
    with BareChain(list(range(lo, hi + 1)), ns.result_bytes, ns.client) as chain:
        rate = asyncio.run(drive(chain.ports[0], body, ns.customers, ns.concurrency, ns.client))
    print(f"bare {hi - lo + 1}-hop chain on the {ns.client} client: {rate:.0f} journeys/s")


if __name__ == "__main__":
    main()
