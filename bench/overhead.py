"""Router overhead against a zero-latency OpenAI-compatible stub, side by side in one run.

    python bench/overhead.py --litellm      # the full run: c = 1, 8, 32, 64; 1 and 2 workers
    python bench/overhead.py --workers 2 4  # more worker legs
    python bench/overhead.py --quick        # a few requests (used by the test suite)
    python bench/overhead.py --baseline /tmp/before   # plus the router of another checkout
    python bench/overhead.py --ablate no-classify      # plus the router without a step
    python bench/overhead.py --litellm --concurrency 1 --requests 6000 --rounds 20
                                            # legs take turns: 20 rounds of 300 requests

Legs, all on loopback, all started before the first measurement and then measured level by
level, one after another, in one run: `direct` (the client calls the stub); `ttc-router xN`
(`ttc-router serve --workers N`: greedy on every tier, the packaged classifier on distinct
prompts, result cache on so every request misses, dollar caps on so reserve and settle run, the
embedded Redis unless `--redis-url`); with `--litellm`, the LiteLLM proxy (one worker, no
database, no master key, `LITELLM_LOCAL_MODEL_COST_MAP=True`, a one-model config pointing at the
stub). LiteLLM is a benchmark-only dependency: the script installs a pinned version into its own
virtual environment (`bench/.venv-litellm`, git-ignored) on first use; it is never imported.
With `--floor`, `bench/floor_proxy.py`: one FastAPI route that forwards the body to the stub
over aiohttp on the router's uvicorn settings, no routing work at all, so the router's added
latency and CPU split into what this stack costs any proxy and what routing adds.
With `--ablate NAME[,NAME]` (repeatable), a 1-worker leg of this checkout's router with those
steps switched off (`bench/ablate.py`: `no-reserve`, `no-settle`, `no-classify`): a
measuring device, not a way to serve; beside the full leg it shows what each step costs.

Closed-loop load at fixed concurrency from one aiohttp client process (`--client httpx`: the
load generator before the seventh pass, itself the bottleneck past a few callers); added
latency = the leg's percentile minus direct's at the same level. With `--rounds K` each level
is measured in K rounds, the legs taking turns (each round starting one leg later), and every
leg's rounds pooled: the speed of a shared machine drifts over minutes, and legs measured one
after another for a whole level each would carry that drift into their ratios. CPU
ms/request = user + system CPU of the leg's process tree (workers included, redis-server
excluded) during the level, over the requests served. RSS: the tree's sum and its
largest process (one worker). "max req/s with p99 < 50 ms" = the highest throughput among the
measured levels whose p99 stays under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))

from bench.ablate import ABLATIONS  # noqa: E402
from bench.loadgen import load, merge  # noqa: E402
from bench.processes import (  # noqa: E402
    cpu_seconds,
    free_port,
    rss_mb,
    start,
    stop,
    wait_ready,
)

POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
          max_concurrency: 256}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 16}}
  medium: {{strategy: greedy, model: stub, max_tokens: 16}}
  hard: {{strategy: greedy, model: stub, max_tokens: 16}}
  very_hard: {{strategy: greedy, model: stub, max_tokens: 16}}
tenants:
  bench: {{daily_usd: 1000000}}
anonymous_tenant: bench
"""


LITELLM_VERSION = "1.81.13"  # pinned; releases 1.82.7/1.82.8 were compromised and yanked
LITELLM_VENV = REPO / "bench" / ".venv-litellm"
LITELLM_CONFIG = """
model_list:
  - model_name: ttc-auto
    litellm_params:
      model: openai/stub
      api_base: {stub}/v1
      api_key: sk-stub
"""


def ensure_litellm(venv: Path = LITELLM_VENV) -> Path:
    """The `litellm` proxy executable of the benchmark's own virtual environment."""
    exe = venv / "bin" / "litellm"
    marker = venv / f".litellm-{LITELLM_VERSION}"
    if exe.exists() and marker.exists():
        return exe
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        check=True,
    )
    marker.touch()
    return exe


def start_litellm(exe: Path, stub: str, tmp: Path, env: dict[str, str]) -> tuple[Any, str]:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(stub=stub))
    lenv = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "LITELLM_MASTER_KEY")}
    lenv.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        NO_DOCS="True",
    )
    cmd = [
        str(exe),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    return start(cmd, lenv, tmp / "litellm.log"), f"http://127.0.0.1:{port}"


def start_router(stub: str, tmp: Path, env: dict[str, str], workers: int,
                 redis_url: str | None, classifier: str | None = None,
                 checkout: Path | None = None, ablate: str | None = None) -> tuple[Any, str]:
    """`ttc-router serve --workers N` of this checkout, or of `checkout` (a before/after leg:
    run from that directory, so its `router` package is the one imported), or with `ablate`
    (`bench/ablate.py`, one worker) this checkout's with those steps switched off."""
    port = free_port()
    name = f"{workers}-{checkout.name}" if checkout else str(workers)
    if ablate:
        name = f"{workers}-{ablate}"
    policy = tmp / f"policy-{name}.yaml"
    policy.write_text(POLICY.format(stub=stub))
    router_env = {
        **env,
        "TTC_PORT": str(port),
        "TTC_POLICY_PATH": str(policy),
        "TTC_DATA_DIR": str(tmp / f"data-{name}"),
        "TTC_LOG_LEVEL": "warning",
        "TTC_REDIS_PREFIX": f"ttc-bench-{uuid.uuid4().hex[:8]}:",
    }
    if redis_url:
        router_env["TTC_REDIS_URL"] = redis_url
    if classifier:
        router_env["TTC_CLASSIFIER_BACKEND"] = classifier
    cmd = [sys.executable, "-m", "router.cli", "serve", "--workers", str(workers)]
    if ablate:
        cmd[2:4] = ["bench.ablate", ablate, "serve"]
    if checkout is None:
        return start(cmd, router_env, tmp / f"router-{name}.log"), f"http://127.0.0.1:{port}"
    router_env["PYTHONPATH"] = str(checkout)
    with (tmp / f"router-{name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=router_env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=checkout)
    return proc, f"http://127.0.0.1:{port}"


def start_floor(stub: str, tmp: Path, env: dict[str, str]) -> tuple[Any, str]:
    """`bench/floor_proxy.py`: the thinnest forwarder on the router's stack (the floor)."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.floor_proxy", "--upstream", stub, "--port", str(port)]
    return start(cmd, env, tmp / "floor.log"), f"http://127.0.0.1:{port}"


def measure(url: str, pid: int | None, c: int, total: int, tag: str, client: str
            ) -> dict[str, Any]:
    """One closed-loop level; with `pid`, the CPU the process tree spent per request and its
    memory afterwards."""
    before = cpu_seconds(pid) if pid else 0.0
    out = asyncio.run(load(url, c, total, tag, client=client))
    if pid:
        out["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / max(out["requests"], 1)
        out["rss_mb"], out["rss_max_mb"] = rss_mb(pid)
    return out


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every leg is started first and measured level by level, side by side, in one run."""
    tmp = Path(tempfile.mkdtemp(prefix="ttc-bench-"))
    stub_port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    stub_url = f"http://127.0.0.1:{stub_port}"
    procs = [start([sys.executable, "-m", "bench.stub_upstream", "--port", str(stub_port)],
                   env, tmp / "stub.log")]
    legs: dict[str, tuple[Any, str]] = {}
    try:
        for workers in sorted({1, *args.workers}):
            legs[f"ttc-router x{workers}"] = start_router(stub_url, tmp, env, workers,
                                                          args.redis_url, args.classifier)
        if args.baseline:
            legs[f"ttc-router x1 ({args.baseline.name})"] = start_router(
                stub_url, tmp, env, 1, args.redis_url, args.classifier, args.baseline)
        for ablate in args.ablate:
            legs[f"ttc-router x1 (ablated: {ablate})"] = start_router(
                stub_url, tmp, env, 1, args.redis_url, args.classifier, ablate=ablate)
        if args.floor:
            legs["floor"] = start_floor(stub_url, tmp, env)
        if args.litellm:
            legs["LiteLLM"] = start_litellm(ensure_litellm(), stub_url, tmp, env)
        procs += [proc for proc, _ in legs.values()]
        wait_ready(f"{stub_url}/v1/models")
        for name, (_, base) in legs.items():
            wait_ready(f"{base}/health/liveliness" if name == "LiteLLM" else f"{base}/readyz")
            asyncio.run(load(f"{base}/v1/chat/completions", 2, 40, f"warm-{name}",
                             client=args.client))
        for i in range(args.busy):  # a crowded machine: spinning processes, not measured
            procs.append(start([sys.executable, "-c", "while True: pass"], env,
                               tmp / f"busy-{i}.log"))
        targets = {"direct": (None, stub_url), **{n: (p.pid, b) for n, (p, b) in legs.items()}}
        names = list(targets)
        rows: list[dict[str, Any]] = []
        for c in args.concurrency:
            total = max(args.requests, c * 4)
            each = max(total // args.rounds, c * 4)
            parts: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for r in range(args.rounds):  # each round starts one leg later than the last
                for name in names[r % len(names):] + names[:r % len(names)]:
                    pid, base = targets[name]
                    parts[name].append(measure(f"{base}/v1/chat/completions", pid, c, each,
                                               f"{name}-{c}-{r}", args.client))
            rows.append({"concurrency": c, "requests": each * args.rounds,
                         "legs": {name: merge(parts[name]) for name in names}})
        return rows
    finally:
        for proc in reversed(procs):
            stop(proc)


def table(rows: list[dict[str, Any]]) -> str:
    """Per level and leg: latency, latency added over direct, throughput, CPU, memory."""
    lines = [
        "| callers | leg | p50 / p95 / p99 ms | added p50 / p95 / p99 ms | req/s "
        "| CPU ms/req | RSS MiB (tree / largest process) | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        d = row["legs"]["direct"]
        for name, r in row["legs"].items():
            added = "-" if name == "direct" else " / ".join(
                f"{r[k] - d[k]:.1f}" for k in ("p50", "p95", "p99"))
            cpu = f"{r['cpu_ms']:.1f}" if "cpu_ms" in r else "-"
            rss = f"{r['rss_mb']:.0f} / {r['rss_max_mb']:.0f}" if "rss_mb" in r else "-"
            lines.append(
                f"| {row['concurrency']} | {name} | {r['p50']:.1f} / {r['p95']:.1f} / "
                f"{r['p99']:.1f} | {added} | {r['rps']:.0f} | {cpu} | {rss} "
                f"| {int(r['errors'])} |"
            )
    lines += ["", "| leg | max req/s with p99 < 50 ms | added p50 at 1 caller, ratio to LiteLLM "
              "| p99 at 32 callers, ratio to LiteLLM |", "|---|---|---|---|"]
    names = [n for n in rows[0]["legs"] if n != "direct"] if rows else []
    for name in names:
        ok = [row["legs"][name]["rps"] for row in rows if row["legs"][name]["p99"] < 50]
        best = f"{max(ok):.0f}" if ok else "none"
        lines.append(f"| {name} | {best} | {_ratio(rows, name, 1, 'p50', True)} "
                     f"| {_ratio(rows, name, 32, 'p99', False)} |")
    return "\n".join(lines)


def _ratio(rows: list[dict[str, Any]], name: str, c: int, key: str, added: bool) -> str:
    for row in rows:
        legs = row["legs"]
        if row["concurrency"] == c and "LiteLLM" in legs:
            base = legs["direct"][key] if added else 0.0
            mine, theirs = legs[name][key] - base, legs["LiteLLM"][key] - base
            return f"{mine / theirs:.2f}" if theirs > 0 else "n/a"
    return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few requests, one level")
    parser.add_argument("--floor", action="store_true",
                        help="add the floor leg: bench/floor_proxy.py, a bare FastAPI + aiohttp "
                             "forwarder on the router's uvicorn settings (no routing work)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[2],
                        help="ttc-router legs besides the 1-worker one (serve --workers N)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TTC_REDIS_URL"),
        help="Redis for budgets/cache (default: the embedded one)",
    )
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each level in this many rounds of requests / rounds, "
                             "the legs taking turns (each round starts one leg later): a "
                             "machine whose speed drifts during the run then slows every leg "
                             "alike")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="keep N processes spinning on the CPU while the levels are "
                             "measured (after the warm-up): a crowded machine, where every "
                             "hop between processes waits for a core")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp",
                        help="the load generator's HTTP client (httpx: the one before the "
                             "seventh pass, itself the bottleneck past a few callers)")
    parser.add_argument("--classifier", default=None,
                        help="TTC_CLASSIFIER_BACKEND of the router legs (default: the service's)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="add a 1-worker leg running the router of this checkout (a "
                        "before, e.g. `git archive <commit> | tar -x -C DIR`), side by side")
    parser.add_argument("--ablate", action="append", default=[], metavar="NAME[,NAME]",
                        help="add a 1-worker leg with these steps switched off "
                             f"(bench/ablate.py: {', '.join(ABLATIONS)}); repeatable")
    parser.add_argument(
        "--litellm",
        action="store_true",
        help=f"add leg (c): the LiteLLM proxy {LITELLM_VERSION} (installed on first use)",
    )
    args = parser.parse_args()
    for ablate in args.ablate:
        unknown = set(ablate.split(",")) - set(ABLATIONS)
        if unknown:
            parser.error(f"unknown ablation {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.busy < 0:
        parser.error("--busy must be at least 0")
    if args.quick:
        args.requests, args.concurrency, args.workers = 10, [2], [1]
    rows = run(args)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
