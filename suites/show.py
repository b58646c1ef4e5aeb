"""The tables of ``lsb show`` that need more than a column format: the overall table with
its ties and intervals, and each suite's step-size windows."""

from __future__ import annotations

import pandas as pd

from suites import leaderboard
from suites.site_data import natural_key
from suites.sitegen.format import fmt_interval, fmt_window

SCORE_NOTE = (
    "\n(score: area under the performance profile ± half its 95 % bootstrap interval over "
    "tasks and seeds; =r: ranks the intervals cannot tell apart; step_window: geometric mean "
    "over tasks of the factor by which the tuned step size (× 2^k, k = -3…3) stays near its "
    "best on every tuning seed)")
OVERALL_COLUMNS = ["rank", "optimizer", "score", "tasks_solved", "tasks", "step_window",
                   "grid_near_best", "time_vs_sgd", "memory_vs_sgd", "state_per_param",
                   "source_hash"]


def overall_for_show(overall: pd.DataFrame) -> pd.DataFrame:
    """``leaderboard.overall_table`` as printed: the rank with its ties ("=3"), the score ±
    half its bootstrap interval, the step-size window as a factor ("×8", "n/a")."""
    shown = overall.assign(
        rank=overall["tied_rank"],
        score=[fmt_interval(v, lo, hi) for v, lo, hi in
               zip(overall["profile_score"], overall["score_low"], overall["score_high"],
                   strict=True)],
        step_window=[fmt_window(w) for w in overall["step_window"]],
    )
    return shown[OVERALL_COLUMNS]


def windows_for_show(runs: pd.DataFrame, budget: str, suite: str) -> pd.DataFrame | None:
    """Optimizers × tasks of a suite: each step-size window ("×8", "none", "n/a"); ``None``
    when the suite has no sensitivity runs."""
    windows = leaderboard.step_size_windows(leaderboard.sensitivity_points(runs, budget, suite))
    if windows.empty:
        return None
    windows = windows.assign(
        cell=[fmt_window(w, found) for w, found in
              zip(windows["window"], windows["found"], strict=True)],
        short=windows["task"].str.removeprefix(f"{suite}/"))
    pivot = windows.pivot(index="optimizer", columns="short", values="cell").fillna("n/a")
    pivot = pivot[sorted(pivot.columns, key=natural_key)]
    return pivot.rename_axis(columns=None).reset_index()
