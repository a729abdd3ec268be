"""The collectors: cached label children count where `labels()` would, under every spelling."""

from __future__ import annotations

from router.metrics import Metrics, exposition


def _samples(metrics: Metrics, name: str) -> dict[str, float]:
    body = exposition(metrics)[0].decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in body.splitlines() if line.startswith(name + "{")}


def test_cached_children_are_the_right_series() -> None:
    m = Metrics()
    m.tokens.labels(tier="easy", strategy="greedy", kind="prompt").inc(3)
    m.tokens.labels(kind="prompt", tier="easy", strategy="greedy").inc(4)  # names reordered
    m.tokens.labels("easy", "greedy", "prompt").inc(5)  # positional
    m.tokens.labels(tier="hard", strategy="greedy", kind="prompt").inc(7)
    m.tokens.labels(tier="easy", strategy="greedy", kind="prompt").inc(1)  # cached
    assert _samples(m, "ttc_tokens_total") == {
        'ttc_tokens_total{kind="prompt",strategy="greedy",tier="easy"}': 13.0,
        'ttc_tokens_total{kind="prompt",strategy="greedy",tier="hard"}': 7.0,
    }
    child = m.cache.labels(result="miss")
    assert m.cache.labels(result="miss") is child  # built once, then reused
    m.overhead.labels(endpoint="chat").observe(0.002)
    m.overhead.labels(endpoint="chat").observe(0.004)
    assert _samples(m, "ttc_overhead_seconds_count") == {
        'ttc_overhead_seconds_count{endpoint="chat"}': 2.0}


def test_apps_do_not_share_children() -> None:
    """Each app has its own registry: a child cached by one never counts for another."""
    a, b = Metrics(), Metrics()
    a.cache.labels(result="hit").inc()
    b.cache.labels(result="hit").inc(2)
    assert _samples(a, "ttc_cache_requests_total") == {
        'ttc_cache_requests_total{result="hit"}': 1.0}
    assert _samples(b, "ttc_cache_requests_total") == {
        'ttc_cache_requests_total{result="hit"}': 2.0}
