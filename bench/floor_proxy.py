"""The thinnest forwarder on the router's own stack: the floor under `bench/overhead.py`.

    python -m bench.floor_proxy --upstream http://127.0.0.1:9100 --port 9200

uvicorn with the router's settings (uvloop, httptools, no access log), one FastAPI route
`POST /v1/chat/completions` that reads the body (orjson), posts it to the upstream over one
pooled aiohttp session and returns the upstream's bytes. No classification, planning, Redis,
metrics or logging: what any Python proxy on this stack pays to take a request in and send one
out. `bench/overhead.py --floor` runs it as a leg beside the router, so the router's added
latency splits into this floor and what routing itself costs. Benchmark-only; never imported
by the service.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
from fastapi import FastAPI, Request, Response


def create_app(upstream: str) -> FastAPI:
    session: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        session["s"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=30))
        yield
        await session["s"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        async with session["s"].post(f"{upstream}/v1/chat/completions", data=orjson.dumps(body),
                                     headers={"content-type": "application/json"}) as r:
            data = await r.read()
            return Response(data, status_code=r.status, media_type="application/json")

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    import uvicorn

    from router.serve import uvicorn_options
    from router.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    options = uvicorn_options(Settings(host="127.0.0.1", port=args.port, log_level="warning"))
    uvicorn.run(create_app(args.upstream), **options)


if __name__ == "__main__":
    main()
