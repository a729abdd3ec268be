"""Hot reload: one `PolicyHolder` per app serves the current policy and swaps it atomically.

A request reads `holder.current` once at its start and uses that `LoadedPolicy` to the end,
so it sees one policy throughout; a swap is a single attribute assignment. A new file that
fails validation is refused: the previous policy keeps serving, and the error is logged,
counted (`ttc_policy_reloads{outcome="error"}`) and kept in `last_error` for `/readyz` and
`GET /admin/policy`. A policy that validates but whose runtime cannot be built (the `prepare`
hook raises: an upstream client that cannot start, a verifier that cannot be built) is refused
the same way: the old policy and its runtime keep serving and the reported revision stays the
old one.

Triggers: `watch()` (file changes, watching the *directory* so Kubernetes ConfigMap updates -
an atomic swap of the `..data` symlink - are seen), `install_sighup()`, and `reload()` called
by `POST /admin/policy/reload`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from policies.advice import policy_warnings
from policies.loader import LoadedPolicy, PolicyValidationError, load_policy
from router.vocab.metrics import PolicyMetrics as Metrics

OnChange = Callable[[LoadedPolicy], Awaitable[None] | None]
Commit = Callable[[], None]
# Builds what a new policy needs before it serves; raising refuses the reload. The returned
# `Commit` installs it and runs in the same step as the swap (no await between the two).
Prepare = Callable[[LoadedPolicy], Awaitable[Commit]]

log = structlog.get_logger("ttc.policy")


def _warn(loaded: LoadedPolicy) -> None:
    for warning in policy_warnings(loaded.policy):
        log.warning("policy_warning", revision=loaded.revision, warning=warning)


class PolicyHolder:
    def __init__(self, initial: LoadedPolicy, path: Path | None, metrics: Metrics) -> None:
        self._current = initial
        self.path = path
        self.metrics = metrics
        self.on_change: list[OnChange] = []  # after a swap (clean-up, notifications)
        self.prepare: Prepare | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_reload_at: float = time.time()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._set_info(initial)
        _warn(initial)

    @classmethod
    def load(cls, path: Path | None, metrics: Metrics) -> PolicyHolder:
        """Load the initial policy (raises `PolicyValidationError`: do not start on a bad one)."""
        return cls(load_policy(path), path, metrics)

    @property
    def current(self) -> LoadedPolicy:
        return self._current

    def _set_info(self, loaded: LoadedPolicy) -> None:
        self.metrics.policy_info.clear()
        self.metrics.policy_info.labels(revision=loaded.revision).set(1)

    async def reload(self) -> LoadedPolicy:
        """Re-read the file; swap when valid and changed. Raises `PolicyValidationError`
        (after recording it) when the new file is refused; the old policy keeps serving."""
        async with self._lock:
            try:
                new = await asyncio.to_thread(load_policy, self.path)
                commit = None
                if new.revision != self._current.revision and self.prepare is not None:
                    commit = await self._prepare(new, self.prepare)
            except PolicyValidationError as exc:
                self.last_error = exc.message
                self.last_error_at = time.time()
                self.metrics.policy_reloads.labels(outcome="error").inc()
                log.error("policy_reload_refused", source=exc.source, errors=exc.errors,
                          serving=self._current.revision)
                raise
            self.metrics.policy_reloads.labels(outcome="ok").inc()
            self.last_error = None
            self.last_error_at = None
            self.last_reload_at = time.time()
            if new.revision == self._current.revision:
                return self._current
            old, self._current = self._current, new
            if commit is not None:
                commit()  # the runtime swaps with the policy, in the same step
            self._set_info(new)
            log.info("policy_reloaded", old=old.revision, new=new.revision, source=new.source)
            _warn(new)
            for callback in list(self.on_change):
                try:
                    outcome = callback(new)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    log.exception("policy_on_change_failed", revision=new.revision)
            return new

    @staticmethod
    async def _prepare(new: LoadedPolicy, prepare: Prepare) -> Commit:
        """Run `prepare`; a failure becomes a `PolicyValidationError` (a refused reload)."""
        try:
            return await prepare(new)
        except PolicyValidationError:
            raise
        except Exception as exc:
            log.exception("policy_runtime_build_failed", revision=new.revision)
            raise PolicyValidationError(
                new.source, [f"runtime: cannot build ({type(exc).__name__}): {exc}"]
            ) from exc

    async def _reload_quietly(self, trigger: str) -> None:
        try:
            await self.reload()
        except PolicyValidationError:
            pass  # recorded and logged by reload()
        except Exception:  # a reload must never kill the watcher
            log.exception("policy_reload_failed", trigger=trigger)

    def status(self) -> dict[str, Any]:
        """For `/readyz` detail and `GET /admin/policy`."""
        cur = self._current
        return {
            "revision": cur.revision,
            "source": cur.source,
            "loaded_at": cur.loaded_at,
            "last_reload_at": self.last_reload_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }

    async def watch(self, stop_event: asyncio.Event | None = None, debounce_ms: int = 200) -> None:
        """Reload whenever the policy's directory changes; returns when `stop_event` is set.

        Watches the directory, not the file: ConfigMap mounts replace a symlink, which a watch
        on the file itself would miss. Any change re-reads the file; an unchanged revision is
        a no-op. With the packaged policy (no path) there is nothing to watch.
        """
        if self.path is None:
            return
        from watchfiles import awatch

        # absolute(), not resolve(): the directory holding the (symlinked) file
        path = await asyncio.to_thread(lambda: Path(str(self.path)).absolute())
        name = path.name

        def relevant(_change: object, changed: str) -> bool:
            # The file itself, or a ConfigMap swap (`..data` and its timestamped targets);
            # other files that share the directory (logs, say) do not trigger a re-read.
            base = os.path.basename(changed)
            return base == name or base.startswith("..")

        async for _changes in awatch(path.parent, watch_filter=relevant, debounce=debounce_ms,
                                     stop_event=stop_event, recursive=False):
            await self._reload_quietly("file")

    def _on_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._reload_quietly("sighup"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def install_sighup(self, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Reload on SIGHUP. False where signals cannot be handled (Windows, non-main thread)."""
        loop = loop or asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup, loop)
        except (NotImplementedError, RuntimeError, AttributeError, ValueError):
            return False
        return True

    @staticmethod
    def remove_sighup(loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)


__all__ = ["Commit", "OnChange", "PolicyHolder", "Prepare"]
