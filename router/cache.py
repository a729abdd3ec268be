"""Exact-match result cache on Redis, isolated per tenant, fail-open.

Key: ``<prefix>c:{<tenant>}:<sha256>`` where the digest covers (tenant, logical model,
normalised messages, result-changing parameters, policy revision). The tenant is both hashed
and spelled in the key, so one tenant can never read another's entry, and a policy reload
(new revision) starts a fresh cache. Values are JSON, capped at `max_entry_bytes`.

Failures never fail a request: `get` answers None, `set` does nothing, both count
`ttc_cache_requests{result="error"}` and `ttc_store_errors`, as does an unreadable entry.
After an error the cache is skipped for `cooldown_s` (`ready` says so; the request is then a
`bypass`), so a dead Redis does not add a connect timeout to every request. Hits, misses and
bypasses are counted once per answered request, by the API layer (`record_request`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import orjson
from redis.exceptions import RedisError

from policies.schema import CachePolicy
from router import jsonfast
from router.metrics import Metrics
from router.store import Store

_FLAT = (str, int, float, bool, type(None))


def _message(message: Any) -> dict[str, Any]:
    if is_dataclass(message) and not isinstance(message, type):
        # A flat dataclass (the router's Message) as its fields: what `asdict` gives, without
        # its recursive deep copy (most of the key's cost); anything nested goes through it.
        flat = getattr(message, "__dict__", None)
        if flat is not None and all(isinstance(v, _FLAT) for v in flat.values()):
            message = flat
        else:
            message = asdict(message)
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a mapping or dataclass, got {type(message).__name__}")
    out = dict(message)
    if isinstance(out.get("content"), str):
        out["content"] = unicodedata.normalize("NFC", out["content"])
    return out


def should_cache(policy: CachePolicy, temperature: float | None, n: int = 1) -> bool:
    """Whether a request's result may be cached: greedy results always, sampled ones
    (temperature > 0, or several choices) only when the policy allows it."""
    if not policy.enabled:
        return False
    sampled = (temperature or 0.0) > 0 or n > 1
    return policy.cache_sampled or not sampled


class ResultCache:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        cooldown_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._skip_until = 0.0
        self._writes: dict[str, asyncio.Future[Any]] = {}  # writes still on their way

    def writing(self, key: str, write: asyncio.Future[Any]) -> None:
        """`write` (a background task) stores `key`: a `get` of it in this process waits for
        the write first, so the next identical request hits as when the write was awaited."""
        self._writes[key] = write

        def done(_: asyncio.Future[Any]) -> None:
            if self._writes.get(key) is write:
                del self._writes[key]

        write.add_done_callback(done)

    def key(
        self,
        tenant: str,
        model: str,
        messages: Sequence[Any],
        params: Mapping[str, Any],
        revision: str,
    ) -> str:
        material = {
            "tenant": tenant,
            "model": model,
            "messages": [_message(m) for m in messages],
            "params": {k: v for k, v in sorted(params.items()) if v is not None},
            "revision": revision,
        }
        try:
            canonical = orjson.dumps(material, default=str,
                                     option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        except TypeError:  # lone surrogates: the standard library can spell them
            canonical = json.dumps(material, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False, default=str).encode("utf-8",
                                                                           "surrogatepass")
        digest = hashlib.sha256(canonical).hexdigest()
        return self.store.key("c", f"{{{tenant}}}", digest)

    def _open(self) -> bool:
        return self.clock() >= self._skip_until

    def _failed(self, op: str) -> None:
        self.metrics.cache.labels(result="error").inc()
        self.metrics.store_errors.labels(op=op).inc()
        self._skip_until = self.clock() + self.cooldown_s

    async def get(self, key: str) -> dict[str, Any] | None:
        if not await self.ready(key):
            return None
        try:
            raw = await self.store.client.get(key)
        except (RedisError, OSError):
            self.failed_read()
            return None
        return self.read(raw)

    async def ready(self, key: str) -> bool:
        """Before a read of `key`: wait for this process's write of it still on its way, and
        say whether the cache is open (False while cooling down after an error: `bypass`)."""
        if (write := self._writes.get(key)) is not None:
            await asyncio.wait([write])
        return self._open()

    def read(self, raw: str | bytes | None) -> dict[str, Any] | None:
        """The entry a read returned; None for a miss and for an unreadable entry (counted
        as an error). Reads that ride in another script (the reservation's probe) come
        through here too."""
        if raw is None:
            return None
        try:
            value = jsonfast.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.metrics.cache.labels(result="error").inc()
            return None
        return value

    def failed_read(self) -> None:
        """A read that did not reach Redis: counted, and the cache cools down."""
        self._failed("cache_get")

    def encode(self, value: Mapping[str, Any], max_bytes: int) -> str | None:
        """The stored form of `value`; None when it is too large or the cache is cooling
        down after an error (then nothing is written)."""
        data = jsonfast.dumps(value)
        if len(data) > max_bytes or self.clock() < self._skip_until:
            return None
        return data.decode("utf-8")

    async def set(self, key: str, value: Mapping[str, Any], ttl_s: int, max_bytes: int) -> bool:
        """Store `value`; False when skipped (too large, store down)."""
        data = self.encode(value, max_bytes)
        if data is None:
            return False
        try:
            await self.store.client.set(key, data, ex=max(1, int(ttl_s)))
        except (RedisError, OSError):
            self._failed("cache_set")
            return False
        return True


__all__ = ["ResultCache", "should_cache"]
