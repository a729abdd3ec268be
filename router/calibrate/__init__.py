"""`ttc-router calibrate`: measure strategies x budgets on an operator's model and data, and
choose a compute-optimal operating point per difficulty tier (Snell et al. 2024).

    items -> grid of configurations -> resumable runs (JSONL cache) -> per-tier statistics
          -> frontier + choices (target / cap mode) -> policy fragment, report, solve rates
"""

from router.calibrate.analysis import (
    ALL,
    Calibration,
    Choice,
    Point,
    TierResult,
    assign_tiers,
    calibrate,
    choose_cap,
    choose_target,
    frontier,
    solve_rates,
)
from router.calibrate.cache import Record, ResultCache
from router.calibrate.data import EvalFileError, EvalItem, load_items, parse_items, write_items
from router.calibrate.grid import (
    GridConfig,
    GridError,
    default_grid,
    expand,
    load_grid,
    parse_grid,
    parse_spec,
)
from router.calibrate.outputs import policy_fragment, write_solve_rates
from router.calibrate.runner import Checker, GridRun, Outcome, StrategyRunner, run_grid
from router.calibrate.workflow import (
    Options,
    analyse,
    calibrate_model,
    check_grid,
    verifier_resolver,
    write_outputs,
)

__all__ = [
    "ALL",
    "Calibration",
    "Checker",
    "Choice",
    "EvalFileError",
    "EvalItem",
    "GridConfig",
    "GridError",
    "GridRun",
    "Options",
    "Outcome",
    "Point",
    "Record",
    "ResultCache",
    "StrategyRunner",
    "TierResult",
    "analyse",
    "assign_tiers",
    "calibrate",
    "calibrate_model",
    "check_grid",
    "choose_cap",
    "choose_target",
    "default_grid",
    "expand",
    "frontier",
    "load_grid",
    "load_items",
    "parse_grid",
    "parse_items",
    "parse_spec",
    "policy_fragment",
    "run_grid",
    "solve_rates",
    "verifier_resolver",
    "write_items",
    "write_outputs",
    "write_solve_rates",
]
