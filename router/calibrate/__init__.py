"""`ttc-router calibrate`: measure strategies x budgets on an operator's model and data (or
replay recorded samples), and choose the compute-optimal allocation over difficulty tiers
(Snell et al. 2024), solved exactly for the average cost per query.

    items -> grid of configurations -> resumable runs (JSONL cache) or replayed samples
          -> per-tier statistics -> exact allocation frontier -> budget / target / knee point
          -> held-out evaluation with bootstrap intervals -> policy, report, solve rates
"""

from router.calibrate.analysis import (
    ALL,
    Calibration,
    Point,
    TierResult,
    assign_tiers,
    calibrate,
    frontier,
    optimise,
    solve_rates,
)
from router.calibrate.cache import Record, ResultCache
from router.calibrate.data import EvalFileError, EvalItem, load_items, parse_items, write_items
from router.calibrate.grid import (
    GridConfig,
    GridError,
    agreement_cascade,
    default_grid,
    expand,
    family,
    is_oracle,
    is_posterior,
    load_grid,
    parse_grid,
    parse_spec,
)
from router.calibrate.holdout import Holdout, evaluate_holdout, split_items
from router.calibrate.optimise import (
    Allocation,
    Pick,
    allocation_frontier,
    brute_force,
    for_accuracy,
    for_budget,
    knee,
)
from router.calibrate.outputs import complete_policy, policy_fragment, write_solve_rates
from router.calibrate.replay import replay, replay_grid, replayable
from router.calibrate.runner import Checker, GridRun, Outcome, StrategyRunner, run_grid
from router.calibrate.samples import (
    RecordedItem,
    RecordedSample,
    load_samples,
    parse_samples,
    write_samples,
)
from router.calibrate.workflow import (
    Evaluation,
    Options,
    analyse,
    calibrate_model,
    check_grid,
    evaluate,
    verifier_resolver,
    write_outputs,
)

__all__ = [
    "ALL",
    "Allocation",
    "Calibration",
    "Checker",
    "EvalFileError",
    "EvalItem",
    "Evaluation",
    "GridConfig",
    "GridError",
    "GridRun",
    "Holdout",
    "Options",
    "Outcome",
    "Pick",
    "Point",
    "Record",
    "RecordedItem",
    "RecordedSample",
    "ResultCache",
    "StrategyRunner",
    "TierResult",
    "agreement_cascade",
    "allocation_frontier",
    "analyse",
    "assign_tiers",
    "brute_force",
    "calibrate",
    "calibrate_model",
    "check_grid",
    "complete_policy",
    "default_grid",
    "evaluate",
    "evaluate_holdout",
    "expand",
    "family",
    "for_accuracy",
    "for_budget",
    "frontier",
    "is_oracle",
    "is_posterior",
    "knee",
    "load_grid",
    "load_items",
    "load_samples",
    "optimise",
    "parse_grid",
    "parse_items",
    "parse_samples",
    "parse_spec",
    "policy_fragment",
    "replay",
    "replay_grid",
    "replayable",
    "run_grid",
    "solve_rates",
    "split_items",
    "verifier_resolver",
    "write_items",
    "write_outputs",
    "write_samples",
    "write_solve_rates",
]
