"""Real Redis topologies started from `redis-server` processes: a three-master Cluster and a
Sentinel group (primary, replica, three sentinels). Ports come from a free-port finder, data
dirs are temp dirs, every process is stopped by its own handle.

Skipped (with the reason) only where `redis-server` / `redis-cli` are not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SERVICE = "ttcprimary"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server / redis-cli not installed: no real Cluster or Sentinel here")
    return server, cli


def cli(port: int, *args: str, timeout: float = 10) -> str:
    _, exe = binaries()
    out = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(port), *args],
                         capture_output=True, text=True, timeout=timeout)
    return out.stdout.strip()


def wait_for(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s}s")


@dataclass
class Processes:
    """redis-server children of one topology and their temp dir."""

    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ttc-topo-")))
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int, *args: str) -> None:
        server, _ = binaries()
        work = self.dir / str(port)
        work.mkdir(exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [server, *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
             "--save", "", "--appendonly", "no", "--logfile", str(work / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: cli(port, "PING") == "PONG", 20, f"redis-server :{port}")
        except RuntimeError as exc:
            log = work / "log"
            raise RuntimeError(f"{exc}: {log.read_text()[-500:] if log.exists() else ''}") from None

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port, None)
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)

    def close(self) -> None:
        for port in list(self.procs):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class ClusterTopology:
    ports: list[int]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[ClusterTopology]:
    _, exe = binaries()
    procs = Processes()
    try:
        ports = [free_port() for _ in range(3)]
        for port in ports:
            # the bus port is free-found too (the default, port + 10000, may not exist)
            procs.start(port, "--cluster-enabled", "yes", "--cluster-config-file",
                        f"nodes-{port}.conf", "--cluster-node-timeout", "2000",
                        "--cluster-port", str(free_port()))
        subprocess.run(
            [exe, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        for port in ports:
            wait_for(lambda p=port: "cluster_state:ok" in cli(p, "CLUSTER", "INFO"), 30,
                     f"cluster node :{port}")
        yield ClusterTopology(ports)
    finally:
        procs.close()


@dataclass
class SentinelTopology:
    procs: Processes
    primary: int
    replica: int
    sentinels: list[int]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def current_primary(self) -> int:
        reply = cli(self.sentinels[0], "SENTINEL", "get-master-addr-by-name", SERVICE)
        return int(reply.split()[-1])

    def replicas_of(self, port: int) -> int:
        info = cli(port, "INFO", "replication")
        for line in info.splitlines():
            if line.startswith("connected_slaves:"):
                return int(line.split(":")[1])
        return 0


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[SentinelTopology]:
    binaries()
    procs = Processes()
    try:
        primary, replica = free_port(), free_port()
        procs.start(primary)
        procs.start(replica, "--replicaof", "127.0.0.1", str(primary))
        wait_for(lambda: "master_link_status:up" in cli(replica, "INFO", "replication"), 15,
                 "replica link")
        sentinels = [free_port() for _ in range(3)]
        for port in sentinels:
            conf = procs.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 2000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            procs.start(port, str(conf), "--sentinel")
        topo = SentinelTopology(procs, primary, replica, sentinels)
        # every sentinel knows the replica and the other sentinels before a test fails over
        wait_for(
            lambda: all(
                "num-other-sentinels" in (r := cli(s, "SENTINEL", "master", SERVICE))
                and r.split("num-other-sentinels")[1].split()[0] == "2"
                and r.split("num-slaves")[1].split()[0] == "1"
                for s in sentinels
            ),
            30, "sentinel quorum",
        )
        yield topo
    finally:
        procs.close()
