"""The benchmark scripts in their reduced modes, so they cannot rot.

`bench/overhead.py --quick` runs legs (a) and (b); leg (c), the LiteLLM proxy, installs LiteLLM
into its own virtual environment on first use (minutes), so it runs here only with
`TTC_BENCH_LITELLM=1`. `bench/allocation.py --quick` uses the real local model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WITH_LITELLM = os.environ.get("TTC_BENCH_LITELLM") == "1"


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_rounds_pool_into_one_measurement() -> None:
    from bench.loadgen import merge

    def part(latencies: list[float], wall: float, cpu: float) -> dict[str, object]:
        return {"latencies": latencies, "requests": len(latencies), "wall": wall,
                "errors": 1, "cpu_ms": cpu, "rss_mb": 100.0, "rss_max_mb": 90.0}

    got = merge([part([1.0, 2.0, 3.0], 1.0, 2.0), part([10.0], 3.0, 6.0)])
    assert got["requests"] == 4 and got["errors"] == 2
    assert got["rps"] == 1.0 and got["cpu_ms"] == 3.0  # 4 requests / 4 s; (3*2 + 1*6) / 4
    assert got["p50"] == 3.0 and got["p99"] == 10.0  # nearest rank over all four latencies
    assert "latencies" not in got


def test_overhead_quick(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    args = ["bench/overhead.py", "--quick", "--floor", "--rounds", "2", "--busy", "1",
            "--json", str(out)]
    proc = _run([*args, "--litellm"] if WITH_LITELLM else args)
    [row] = json.loads(out.read_text())
    legs = row["legs"]
    assert row["requests"] == 16 and legs["ttc-router x1"]["requests"] == 16  # 2 rounds of 8
    assert legs["direct"]["errors"] == 0 and legs["ttc-router x1"]["errors"] == 0
    router = legs["ttc-router x1"]
    assert router["p50"] > 0 and legs["direct"]["rps"] > 0
    assert router["cpu_ms"] > 0 and router["rss_mb"] > 0
    assert "| callers | leg |" in proc.stdout
    floor = legs["floor"]  # the bare forwarder answered every request (CPU ticks are 10 ms:
    assert floor["errors"] == 0 and floor["rps"] > 0  # too coarse for its few ms here)
    if WITH_LITELLM:
        assert legs["LiteLLM"]["errors"] == 0
        assert "ratio to LiteLLM" in proc.stdout


def test_hotpath_cpu_small() -> None:
    proc = _run(["bench/hotpath_cpu.py", "--requests", "30"])
    rows = {line.split(" | ")[0].strip("| ").strip(): line for line in proc.stdout.splitlines()
            if line.startswith("| ")}
    assert "0 errors" in proc.stdout

    def us(label: str) -> float:  # the CPU column
        return float(rows[label].split("|")[3])

    def wall(label: str) -> tuple[float, int]:  # median wall us a call, and the calls
        median, calls = rows[label].split("|")[4].split()
        return float(median), int(calls.strip("()"))

    assert us("whole router process (all threads)") > us("pipeline.handle (steps 1-8)") > 0
    # the wrapped steps were reached: a request's lone text takes the single-text pass
    assert us("classifier pass") >= us("single-text pass (classifier.fused)") > 0
    assert us("single-text pass (classifier.fused)") > us("word pieces (memoised per word)") > 0
    assert us("classifier pass, isolated (this process, back to back)") > 0
    served, calls = wall("request in the server (RequestContext in -> out)")
    assert calls == 30 and served > wall("pipeline.handle (steps 1-8)")[0] > 0
    # the warm-up taught the router the tenant's headroom: every request reserved ahead
    assert wall("the reservation sent ahead: its answer")[1] == 30


def test_error_bodies_small() -> None:
    proc = _run(["bench/error_bodies.py", "--requests", "12", "--size-kib", "128"])
    rows = [line.split(" | ") for line in proc.stdout.splitlines() if line.startswith("| not")
            or line.startswith("| bad") or line.startswith("| valid")]
    assert [(r[0].strip("| "), r[2]) for r in rows] == [
        ("not-json", "400: 12"), ("bad-field", "400: 12"), ("valid", "200: 12")]
    for r in rows:  # before / peak / after, all measured
        before, peak, after = (float(x) for x in r[3].strip(" |").split(" / "))
        assert 0 < before <= peak and after > 0


def test_store_quick() -> None:
    proc = _run(["bench/store.py", "--quick", "--compare-parsers"])
    lines = proc.stdout.splitlines()
    assert "CPU us/req" in lines[1] and "replies parsed by" in lines[1]
    rows = [line.split(maxsplit=6) for line in lines[2:8]]
    assert [(int(r[0]), r[6]) for r in rows] == [
        (c, p) for c in (1, 8, 32) for p in ("hiredis", "pure Python")]  # hiredis in use
    assert all(float(r[1]) > 0 and float(r[5]) > 0 for r in rows)  # req/s and CPU measured


@pytest.mark.model
def test_allocation_quick(tmp_path: Path) -> None:
    proc = _run(["bench/allocation.py", "--quick", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "allocation-quick.json").read_text())
    curves = {c["name"]: c for c in result["curves"]}
    assert {"uniform greedy", "uniform majority vote", "uniform self-consistency, adaptive stop",
            "uniform best-of-N plain + math_reference (oracle)",
            "adaptive, oracle (solve-rate bins) tiers"} <= set(curves)
    assert curves["uniform best-of-N plain + math_reference (oracle)"]["kind"] == "ceiling"
    for c in curves.values():
        for arm in c["arms"]:
            lo, hi = arm["accuracy_ci"]
            assert 0 <= lo <= arm["accuracy"] <= hi <= 1 and arm["generated"] > 0
    # pass@N (unbiased over subsets) never falls as N grows
    bon = [a["accuracy"] for a in curves["uniform best-of-N plain + math_reference (oracle)"]
           ["arms"]]
    assert bon == sorted(bon)
    assert result["policy"] and result["ratios"]
    assert (tmp_path / "allocation-quick.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "allocation-quick" / "policy-fragment.yaml").exists()
    assert (tmp_path / "allocation-quick" / "samples-test.jsonl").exists()
    assert "| adaptive, oracle (solve-rate bins) tiers |" in proc.stdout


@pytest.mark.model
def test_allocation_check_quick(tmp_path: Path) -> None:
    """Factoring with the request's check: every sample scored by the answer_check verifier in
    the sandbox, best-of-N by that score is on the grid and is a serve-time curve."""
    proc = _run(["bench/allocation_check.py", "--quick", "--no-classifier", "--out",
                 str(tmp_path)])
    result = json.loads((tmp_path / "allocation-check-quick.json").read_text())
    curves = {c["name"]: c for c in result["curves"]}
    scored = "uniform best-of-N plain + recorded_score"
    assert {"uniform greedy", "uniform majority vote", scored,
            "uniform best-of-N plain, stop at score 0.9 + recorded_score",
            "adaptive, oracle (solve-rate bins) tiers"} <= set(curves)
    assert curves[scored]["kind"] != "ceiling"
    oracle = "uniform best-of-N plain + math_reference (oracle)"
    # the check decides correctness exactly here: best-of-N by its score is pass@N
    by_score = {a["arm"].split("+")[0]: a["accuracy"] for a in curves[scored]["arms"]}
    ceiling = {a["arm"].split("+")[0]: a["accuracy"] for a in curves[oracle]["arms"]}
    assert by_score and all(abs(v - ceiling[k]) < 1e-9 for k, v in by_score.items())
    samples = (tmp_path / "allocation-check-quick" / "samples-train.jsonl").read_text()
    rows = [json.loads(line) for line in samples.splitlines()]
    assert all(s["score"] == float(s["correct"]) for r in rows for s in r["samples"])
    assert "scored every sample with the answer_check verifier" in proc.stdout


def test_classifier_quick_lexical(tmp_path: Path) -> None:
    """The classifier bench end to end on the torch-free backend (quality needs the mix)."""
    from classifier.data import default_data_dir

    out = tmp_path / "classifier.json"
    proc = _run(["bench/classifier.py", "--quick", "--backend", "lexical", "--json", str(out)])
    r = json.loads(out.read_text())["lexical"]
    assert r["latency"]["p50"] > 0 and r["rss_mib"] > 0 and r["cold_s"] > 0
    assert "## Speed and memory" in proc.stdout
    if default_data_dir().exists():
        assert 0 < r["quality"]["macro_f1"] <= 1 and "nq_open" in r["per_source"]
        assert 0 < r["task"]["macro_f1"] <= 1
        leaks, total = r["search_leaks"]
        assert 0 <= leaks <= total and total > 0 and "Task type" in proc.stdout


def test_allocation_sim_small_with_extra_configs() -> None:
    """The simulated scenario table, reduced: the verifier scenarios only, with the share stop
    added to their grid."""
    spec = "best_of_n n=4,8 mode=weighted stop_share=0.75 round_size=2 verifier=recorded_score"
    proc = _run(["bench/allocation_sim.py", "--questions", "200", "--samples", "8",
                 "--boots", "50", "--scores-only", "--config", spec])
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| scenario | tiers |") and len(rows) == 1 + 4  # 2 x 2 tier sources
    assert all("votes + verifier" in r for r in rows[1:])
    from router.calibrate.replay import replay_grid

    grid = len(replay_grid(8, scores=True))
    assert proc.stderr.count(f"{grid + 2} configurations") == 2  # both verifier scenarios


def test_an_ablated_router_serves_without_the_steps_it_names(tmp_path: Path) -> None:
    """`bench/ablate.py`: the leg `bench/overhead.py --ablate` runs really skips the steps."""
    import httpx

    from bench.overhead import POLICY
    from bench.processes import free_port, start, stop, wait_ready
    from bench.stub_upstream import ServerThread, StubUpstream

    bad = subprocess.run([sys.executable, "-m", "bench.ablate", "no-such-step", "serve"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown ablation no-such-step" in bad.stderr
    with ServerThread(StubUpstream()) as stub:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(stub=stub.url))
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TTC_PORT": str(port),
               "TTC_POLICY_PATH": str(policy), "TTC_DATA_DIR": str(tmp_path / "data"),
               "TTC_LOG_LEVEL": "warning", "TTC_ADMIN_TOKEN": "t"}
        proc = start([sys.executable, "-m", "bench.ablate", "no-classify,no-reserve", "serve"],
                     env, tmp_path / "router.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/readyz")
            body = {"model": "ttc-auto", "messages": [
                {"role": "user", "content": "Prove that there are infinitely many primes."}]}
            r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)
            assert r.status_code == 200, r.text
            ttc = r.json()["ttc"]
            assert (ttc["tier"], ttc["confidence"]) == ("medium", 1.0)  # the fixed scores
            spend = httpx.get(f"{base}/admin/spend", params={"tenant": "bench"},
                              headers={"authorization": "Bearer t"}, timeout=30).json()
            assert spend["requests"] == 0 and spend["reserved_usd"] == 0  # Redis untouched
        finally:
            stop(proc)
