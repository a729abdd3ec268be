"""Helpers the benchmark scripts share: free ports, child processes, readiness, percentiles."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `cmd` in the repository root with its output in `log`."""
    with log.open("wb") as handle:
        return subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def tree(pid: int) -> list[Any]:
    """The process and its descendants, without redis-server children (the shared state is
    measured by Redis, not charged to the proxy in front of it)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    out = []
    for p in procs:
        try:
            if "redis-server" not in p.name():
                out.append(p)
        except psutil.Error:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree so far."""
    import psutil

    total = 0.0
    for p in tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of the whole tree, RSS of its largest process) in MiB."""
    import psutil

    sizes = []
    for p in tree(pid):
        try:
            sizes.append(p.memory_info().rss / 2**20)
        except psutil.Error:
            continue
    return (sum(sizes), max(sizes)) if sizes else (0.0, 0.0)
