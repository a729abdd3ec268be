"""How long `ttc-router calibrate --samples` takes: replay, analysis with the held-out report,
outputs (SIMULATED samples from bench/synthetic_samples.py; the time does not depend on what
the samples say, only on their number).

    python bench/replay.py                      # 1,000 questions x 16 samples (the target: < 30 s)
    python bench/replay.py --questions 200      # smaller

Prints one table: wall and CPU seconds of each stage in-process, and of the whole command in a
subprocess (Python start-up and imports included; classifier predictions off, so the time is
the replay's own), with the load average when it ended: on a shared machine the wall time
follows the load, the CPU time does not.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # bench/classifier.py must not shadow the package
    sys.path.insert(0, str(REPO))

from bench.synthetic_samples import main as simulate  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from router.calibrate import Options, evaluate, write_outputs  # noqa: E402
from router.calibrate.replay import replay, replay_grid  # noqa: E402
from router.calibrate.samples import load_samples  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args(argv)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sim.jsonl"
        simulate(["--questions", str(args.questions), "--samples", str(args.samples),
                  "--out", str(path)])
        t, c = time.perf_counter(), _cpu()
        recorded = load_samples(path)
        configs = replay_grid(args.samples, scores=True)
        records, _ = replay(recorded, configs, model="local", max_tokens=512)
        rows.append((f"replay ({len(configs)} configurations)", time.perf_counter() - t,
                     _cpu() - c))
        t, c = time.perf_counter(), _cpu()
        opts = Options(metric="generated", holdout=0.3, tier_from="given")
        items = [r.eval_item() for r in recorded]
        result = evaluate(items, configs, records, "local", opts)
        rows.append(("calibrate + held-out report (1,000 bootstrap resamples)",
                     time.perf_counter() - t, _cpu() - c))
        t, c = time.perf_counter(), _cpu()
        write_outputs(result, items, Path(tmp) / "out", model="local", opts=opts,
                      policy=load_policy(None).policy)
        rows.append(("outputs (policy, report, PNG)", time.perf_counter() - t, _cpu() - c))
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "from router.cli import app; app()", "calibrate",
                        "--samples", str(path), "--out", str(Path(tmp) / "cli"),
                        "--no-predict-tiers", "--cost-metric", "generated",
                        "--tier-from", "given"], cwd=REPO, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows.append(("whole command in a subprocess", time.perf_counter() - t, cpu))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.questions} questions x {args.samples} samples "
          f"(simulated; `calibrate --samples`); load average {load} on {os.cpu_count()} "
          "cores\n")
    print("| stage | wall s | CPU s |\n|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
