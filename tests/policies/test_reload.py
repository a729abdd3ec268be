"""Hot reload: good files swap in, bad ones are refused while requests keep flowing."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from policies import LoadedPolicy, PolicyHolder, PolicyValidationError
from router.metrics import Metrics
from tests.policies.samples import dump, ladder_doc

BAD = "tiers: {easy: {strategy: greedy, model: nowhere}}\n"


def write(path: Path, daily: float) -> None:
    path.write_text(dump(ladder_doc(daily_usd=daily)))


def count(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("ttc_policy_reloads_total", {"outcome": outcome}) or 0


async def until(predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_reload_swaps_good_and_refuses_bad(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, 1.0)
    metrics = Metrics()
    holder = PolicyHolder.load(path, metrics)
    seen: list[str] = []

    async def rebuild(loaded: LoadedPolicy) -> None:
        seen.append(loaded.revision)

    holder.on_change.append(rebuild)
    holder.on_change.append(lambda loaded: seen.append("sync:" + loaded.revision))
    first = holder.current

    write(path, 2.0)
    second = await holder.reload()
    assert second.revision != first.revision and holder.current is second
    assert second.policy.tenants["t"].daily_usd == 2.0
    assert seen == [second.revision, "sync:" + second.revision]
    assert metrics.registry.get_sample_value("ttc_policy_info",
                                             {"revision": second.revision}) == 1
    assert metrics.registry.get_sample_value("ttc_policy_info",
                                             {"revision": first.revision}) is None

    path.write_text(BAD)
    with pytest.raises(PolicyValidationError):
        await holder.reload()
    assert holder.current is second  # the previous policy keeps serving
    assert holder.last_error is not None and "models" in holder.last_error
    assert holder.status()["last_error"] == holder.last_error
    assert (count(metrics, "ok"), count(metrics, "error")) == (1, 1)

    write(path, 2.0)  # fixed again: same content as the serving policy
    assert await holder.reload() is second and holder.last_error is None


async def test_unchanged_file_is_a_noop(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, 1.0)
    holder = PolicyHolder.load(path, Metrics())
    calls: list[LoadedPolicy] = []
    holder.on_change.append(calls.append)
    path.write_text("# reformatted\n" + dump(ladder_doc(daily_usd=1.0)))
    assert await holder.reload() is holder.current and calls == []


async def test_requests_keep_flowing_during_reloads(tmp_path: Path) -> None:
    """A reader snapshotting `current` always gets a complete, valid policy."""
    path = tmp_path / "policy.yaml"
    write(path, 1.0)
    holder = PolicyHolder.load(path, Metrics())
    valid = {1.0, 2.0, 3.0}
    reads = 0
    stop = False

    async def requests() -> None:
        nonlocal reads
        while not stop:
            loaded = holder.current  # one snapshot per request
            await asyncio.sleep(0)
            assert loaded.policy.tenants["t"].daily_usd in valid
            assert loaded.revision  # the same object for the whole request
            reads += 1

    readers = [asyncio.create_task(requests()) for _ in range(5)]
    for i in range(12):
        if i % 3 == 2:
            path.write_text(BAD)
            with pytest.raises(PolicyValidationError):
                await holder.reload()
        else:
            write(path, [1.0, 2.0, 3.0][i % 3])
            await holder.reload()
    stop = True
    await asyncio.gather(*readers)
    assert reads > 12 and holder.current.policy.tenants["t"].daily_usd == 2.0


async def test_watch_sees_configmap_symlink_swap(tmp_path: Path) -> None:
    """Kubernetes ConfigMap layout: policy.yaml -> ..data/policy.yaml, ..data -> ..v1;
    an update renames a new ..data symlink over the old one."""
    mount = tmp_path / "mount"
    (mount / "..v1").mkdir(parents=True)
    write(mount / "..v1" / "policy.yaml", 1.0)
    (mount / "..data").symlink_to("..v1")
    (mount / "policy.yaml").symlink_to("..data/policy.yaml")
    holder = PolicyHolder.load(mount / "policy.yaml", Metrics())
    stop = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(stop, debounce_ms=50))
    await asyncio.sleep(0.5)  # let the watcher start

    (mount / "..v2").mkdir()
    write(mount / "..v2" / "policy.yaml", 2.0)
    (mount / "..data_tmp").symlink_to("..v2")
    os.replace(mount / "..data_tmp", mount / "..data")
    await until(lambda: holder.current.policy.tenants["t"].daily_usd == 2.0)

    (mount / "..v3").mkdir()
    (mount / "..v3" / "policy.yaml").write_text(BAD)
    (mount / "..data_tmp").symlink_to("..v3")
    os.replace(mount / "..data_tmp", mount / "..data")
    await until(lambda: holder.last_error is not None)
    assert holder.current.policy.tenants["t"].daily_usd == 2.0
    stop.set()
    await asyncio.wait_for(watcher, 10)


async def test_watch_ignores_other_files_in_the_directory(tmp_path: Path) -> None:
    """A log file written beside the policy must not make every write a policy re-read."""
    policy = tmp_path / "policy.yaml"
    write(policy, 1.0)
    metrics = Metrics()
    holder = PolicyHolder.load(policy, metrics)
    stop = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(stop, debounce_ms=50))
    await asyncio.sleep(0.5)
    for i in range(5):
        (tmp_path / "router.log").write_text(f"line {i}\n")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert count(metrics, "ok") == 0  # nothing re-read
    write(policy, 3.0)
    await until(lambda: holder.current.policy.tenants["t"].daily_usd == 3.0)
    stop.set()
    await asyncio.wait_for(watcher, 10)


async def test_sighup_reloads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, 1.0)
    holder = PolicyHolder.load(path, Metrics())
    assert holder.install_sighup()
    try:
        write(path, 3.0)
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: holder.current.policy.tenants["t"].daily_usd == 3.0)
    finally:
        holder.remove_sighup()


async def test_packaged_policy_has_nothing_to_watch() -> None:
    holder = PolicyHolder.load(None, Metrics())
    await asyncio.wait_for(holder.watch(), 1)  # returns at once


async def test_a_failing_prepare_refuses_the_reload(tmp_path: Path) -> None:
    """`prepare` builds what the new policy needs before it serves; when it raises, the reload
    is refused like an invalid file, and a later good one commits in the swap step."""
    path = tmp_path / "policy.yaml"
    write(path, 1.0)
    metrics = Metrics()
    holder = PolicyHolder.load(path, metrics)
    first = holder.current
    committed: list[str] = []
    fail = True

    async def prepare(loaded: LoadedPolicy) -> Callable[[], None]:
        if fail:
            raise RuntimeError("no client for you")
        return lambda: committed.append(holder.current.revision)

    holder.prepare = prepare
    holder.on_change.append(lambda loaded: committed.append("changed"))
    write(path, 2.0)
    with pytest.raises(PolicyValidationError) as err:
        await holder.reload()
    assert "no client for you" in err.value.message
    assert holder.current is first and committed == []
    assert holder.last_error is not None and "runtime" in holder.last_error
    assert (count(metrics, "ok"), count(metrics, "error")) == (0, 1)

    fail = False
    second = await holder.reload()
    assert second is holder.current and second.revision != first.revision
    assert committed == [second.revision, "changed"]  # committed with the swap, then notified
    assert holder.last_error is None
