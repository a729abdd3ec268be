"""The request's stopwatch: wall time, and the part of it spent waiting on upstreams."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Clock:
    """Wall time of the request and the part of it spent waiting on upstreams."""

    start: float = field(default_factory=time.perf_counter)
    upstream_s: float = 0.0

    @property
    def overhead_ms(self) -> float:
        return max(time.perf_counter() - self.start - self.upstream_s, 0.0) * 1000


__all__ = ["Clock"]
