"""One JSON POST over a pooled aiohttp session: the non-streaming upstream call's transport.

The openai SDK's request path (request options, header merging, its httpx2 layer over the
vendored aiohttp transport, response wrapping) costs about 1 ms of CPU per call against a
zero-latency upstream, where aiohttp alone costs about 0.3 ms (`bench/upstream_transport.py`).
`OpenAICompatUpstream` therefore sends its non-streaming calls through `JSONPost`, with the
SDK's own base URL and headers (auth, organisation, project, platform headers), and maps
failures the way the SDK path does (`translate`): a timeout is `UpstreamTimeout`, a refused or
dropped connection `Retryable` ("unreachable"), an error status `status_error`, a 2xx body
that is not JSON `UpstreamError` ("malformed response"). Streaming stays on the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from router import jsonfast
from router.errors import UpstreamError, UpstreamTimeout
from router.upstreams.retry import Retryable, status_error


class JSONPost:
    def __init__(
        self,
        name: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        max_connections: int,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = {**headers, "Content-Type": "application/json"}
        # Per phase, as the SDK's transport sets them: connect, each socket read, pool wait.
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
        )
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Built on first use: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers=self.headers,
                auto_decompress=True,
            )
        return self._session

    async def __call__(self, path: str, body: Any) -> Any:
        """POST `body` as JSON to `path` (relative to the base URL); the decoded answer."""
        url = self.base_url + path.lstrip("/")
        try:
            async with self._open().post(url, data=jsonfast.dumps(body)) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    detail = raw.decode("utf-8", "replace")
                    raise status_error(self.name, resp.status, resp.headers.get("retry-after"),
                                       f"Error code: {resp.status} - {detail}")
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
            raise UpstreamTimeout(f"upstream {self.name!r} timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise Retryable(f"upstream {self.name!r} unreachable: {type(exc).__name__}") from exc
        try:
            return jsonfast.loads(raw)
        except ValueError as exc:
            raise UpstreamError(f"upstream {self.name!r} sent a malformed response") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["JSONPost"]
