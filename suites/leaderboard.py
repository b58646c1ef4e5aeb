"""Scoring: from the run files to the leaderboard's tables (pandas DataFrames).

- ``task_table``: per task and optimizer, the configuration that tuning chose and its
  evaluation score, mean ± std over evaluation seeds, with the success rate (share of
  seeds with status ``ok`` and a finite score) and the rank on the task. A failed seed
  counts as the worst possible score, so the mean is finite only when every seed
  succeeded.
- ``overall_table``: per optimizer, the AlgoPerf-style performance-profile score, the
  tuning-robustness score and the per-step overhead relative to SGD. Every optimizer of
  the task table has a row and an integer rank; with no task common to all of them the
  profile scores are NaN, and NaN scores rank last, tied.

Only the latest version of each optimizer counts: of the source hashes an optimizer
name has results for, the one with the most recent run (the ``created`` time stamp of
its files) is kept and the others are ignored (``superseded_versions`` lists them).

Performance profile (Dolan & Moré; AlgoPerf's benchmark score): on each task, an
optimizer's ratio ``r`` is its score over the best optimizer's score (best over its
score when higher is better), so ``r >= 1``, and ``r = inf`` when it failed. Only the
tasks that every ranked optimizer has run enter the profile (``common_tasks``): a task
that a few optimizers ran (say the demo's LRA tasks) is ranked on its own, and it
would otherwise decide the overall order by who ran it rather than how well. Scores
are assumed positive (steps, losses, traces, accuracies); with a non-positive best
score, a tie with it has ratio 1 and anything else ``inf``.
``ρ(τ)`` is the share of tasks with ``r <= τ``; the score is the area under ``ρ`` for
``τ`` in ``[1, τ_max]`` divided by ``τ_max - 1``: 1 for the best optimizer on every
task, 0 for one never within ``τ_max`` of the best.

Tuning robustness: on each task, the share of the optimizer's search space whose
tuning runs all succeeded and whose mean score lies within the task's relative
``tolerance`` of the optimizer's best configuration; averaged over tasks.

Every comparison of scores (orientation, failure, ratio, "near best") is a rule of
``suites.api.Metric``; ``metric_of`` rebuilds a task's metric from its runs' columns.

Overhead: on each task, the median time per step (itself the median over a run's steps
after its warm-up) and the memory (parameters plus optimizer state) relative to ``sgd`` on
the same task and the same machine (device and host); geometric mean over the tasks that
have such a pair, and no number where none has.
``state_per_param`` is the optimizer state in bytes per parameter byte (Adam: 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suites.api import Metric
from suites.results import ResultStore, config_key

#: Performance profiles are integrated for τ in [1, TAU_MAX] (AlgoPerf uses 4).
TAU_MAX = 4.0
#: The baseline of the overhead columns.
REFERENCE_OPTIMIZER = "sgd"

RUN_COLUMNS = [
    "task", "suite", "budget", "phase", "optimizer", "source_hash", "config_key", "seed",
    "status", "score", "steps_run", "steps_to_target", "time_per_step", "wall_time",
    "state_bytes",
    "param_bytes", "created", "metric", "higher_is_better", "tolerance", "machine",
]


def machine_of(env: dict[str, Any]) -> str:
    """Where a run was made (device and host): overheads compare runs of one machine."""
    return f"{env.get('device') or '?'} @ {env.get('hostname') or '?'}"


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run record; ``config_key`` is the configuration's canonical JSON text
    (``suites.results.config_key`` of the record's ``hparams`` dict)."""
    rows = []
    for r in records:
        metric = r.get("metric") or {}
        rows.append({
            "task": r["task"],
            "suite": r.get("suite") or r["task"].split("/", 1)[0],
            "budget": r["budget"],
            "phase": r["phase"],
            "optimizer": r["optimizer"]["name"],
            "source_hash": r["optimizer"]["source_hash"],
            "config_key": config_key(r["hparams"]),
            "seed": r["seed"],
            "status": r["status"],
            "score": _number(r["score"]),
            "steps_run": r.get("steps_run", 0),
            "steps_to_target": _number(r.get("steps_to_target")),
            "time_per_step": _number(r.get("timing", {}).get("time_per_step_s")),
            "wall_time": _number(r.get("timing", {}).get("wall_time_s")),
            "state_bytes": r.get("state_bytes", 0),
            "param_bytes": r.get("param_bytes", 0),
            "created": r.get("created", ""),
            "machine": machine_of(r.get("env") or {}),
            "metric": metric.get("name"),
            "higher_is_better": metric.get("higher_is_better"),
            "tolerance": metric.get("tolerance", 0.1),
        })
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def seconds_per_run(runs: pd.DataFrame, budget: str) -> dict[str, float]:
    """Per task: the median wall time of its recorded runs at ``budget`` (set-up, steps and
    evaluations), from which a sweep's cost is estimated before it starts."""
    at = runs[(runs["budget"] == budget) & runs["wall_time"].notna()]
    return {task: float(seconds) for task, seconds in at.groupby("task")["wall_time"].median()
            .items()}


def load_runs(root: str | Path | None = None) -> pd.DataFrame:
    """Every readable run under a results directory (see ``suites.results``)."""
    return runs_frame(ResultStore(root).records())


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------- selection


def latest_versions(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of each optimizer's latest source hash (the one with the newest run)."""
    if runs.empty:
        return runs
    newest = runs.groupby(["optimizer", "source_hash"])["created"].max().reset_index()
    latest = newest.sort_values("created").groupby("optimizer").tail(1)
    keep = set(zip(latest["optimizer"], latest["source_hash"], strict=True))
    mask = [(o, h) in keep for o, h in zip(runs["optimizer"], runs["source_hash"], strict=True)]
    return runs[mask]


def superseded_versions(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, the source hashes whose runs are ignored, with their run counts."""
    current = latest_versions(runs)[["optimizer", "source_hash"]].drop_duplicates()
    old = runs.merge(current, on=["optimizer", "source_hash"], how="left", indicator=True)
    old = old[old["_merge"] == "left_only"]
    return old.groupby(["optimizer", "source_hash"]).size().rename("runs").reset_index()


def _select(runs: pd.DataFrame, budget: str, phase: str, suite: str | None) -> pd.DataFrame:
    runs = latest_versions(runs)
    runs = runs[(runs["budget"] == budget) & (runs["phase"] == phase)]
    if suite is not None:
        runs = runs[runs["suite"] == suite]
    return runs.assign(
        success=(runs["status"] == "ok") & np.isfinite(runs["score"].astype(float))
    )


def metric_of(rows: pd.DataFrame) -> Metric:
    """The metric of a task, rebuilt from the columns of its runs (``runs_frame``)."""
    first = rows.iloc[0]
    return Metric(name=str(first["metric"]), higher_is_better=bool(first["higher_is_better"]),
                  tolerance=float(first["tolerance"]))


def _oriented(frame: pd.DataFrame) -> pd.Series:
    """Each run's score as lower-is-better (``Metric.oriented``), a failure being ``inf``."""
    values = pd.Series(math.inf, index=frame.index, dtype=float)
    for _, rows in frame.groupby("task", sort=False):
        metric = metric_of(rows)
        values[rows.index] = [metric.oriented(float(score), bool(ok))
                              for score, ok in zip(rows["score"], rows["success"], strict=True)]
    return values


# --------------------------------------------------------------------------- per task


def task_table(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None) -> pd.DataFrame:
    """Per (task, optimizer): chosen config, evaluation score mean ± std, success rate, rank.

    When an optimizer was evaluated with several configs on a task (tuning was redone
    with other seeds), the config evaluated most recently counts.
    """
    columns = ["suite", "task", "optimizer", "config_key", "score_mean", "score_std", "seeds",
               "success_rate", "steps_to_target", "rank", "higher_is_better"]
    runs = _select(runs, budget, "eval", suite)
    if runs.empty:
        return pd.DataFrame(columns=columns)
    last_config = (
        runs.groupby(["task", "optimizer", "config_key"])["created"].max().reset_index()
        .sort_values("created").groupby(["task", "optimizer"]).tail(1)
    )
    runs = runs.merge(last_config[["task", "optimizer", "config_key"]])
    runs = runs.assign(oriented=_oriented(runs))
    rows = []
    for (task, optimizer), group in runs.groupby(["task", "optimizer"], sort=True):
        higher = bool(group["higher_is_better"].iloc[0])
        oriented = group["oriented"].to_numpy(dtype=float)
        mean = float(np.mean(oriented))
        if not math.isfinite(mean):
            std = math.nan  # some seed failed: the spread is not a number
        else:
            std = float(np.std(oriented, ddof=1)) if len(oriented) > 1 else 0.0
        rows.append({
            "suite": group["suite"].iloc[0],
            "task": task,
            "optimizer": optimizer,
            "config_key": group["config_key"].iloc[0],
            "score_mean": -mean if higher else mean,
            "score_std": std,
            "seeds": len(group),
            "success_rate": float(group["success"].mean()),
            # Mean over the seeds that reached the metric's target (NaN: none, or no target).
            "steps_to_target": float(group["steps_to_target"].mean()),
            "higher_is_better": higher,
            "_oriented_mean": mean,
        })
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("task")["_oriented_mean"].rank(method="min").astype(int)
    table = table.sort_values(["task", "rank", "optimizer"]).reset_index(drop=True)
    return table[columns]


# --------------------------------------------------------------------------- overall


def common_tasks(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``table`` (a ``task_table``) on tasks that every one of its optimizers ran."""
    if table.empty:
        return table
    optimizers = table["optimizer"].nunique()
    covered = table.groupby("task")["optimizer"].transform("nunique") == optimizers
    return table[covered]


def performance_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Tasks × optimizers: each score relative to the task's best (≥ 1; ``inf`` = failed)."""
    if table.empty:
        return pd.DataFrame()
    optimizers = sorted(table["optimizer"].unique())
    ratios = {}
    for task, group in table.groupby("task", sort=True):
        metric = Metric(name=task, higher_is_better=bool(group["higher_is_better"].iloc[0]))
        scores = dict(zip(group["optimizer"], group["score_mean"].astype(float), strict=True))
        best = metric.best(scores.values())
        ratios[task] = {o: metric.ratio(scores.get(o, math.nan), best) for o in optimizers}
    return pd.DataFrame.from_dict(ratios, orient="index")[optimizers]


def performance_profile(ratios: pd.DataFrame, taus: Iterable[float]) -> pd.DataFrame:
    """ρ(τ): the share of tasks on which each optimizer is within a factor τ of the best."""
    taus = list(taus)
    return pd.DataFrame(
        {o: [(ratios[o] <= tau).mean() for tau in taus] for o in ratios.columns},
        index=pd.Index(taus, name="tau"),
    )


def profile_score(ratios: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.Series:
    """Area under ρ(τ) on [1, τ_max], normalized to [0, 1] (exact, per-task closed form)."""
    contribution = ((tau_max - ratios) / (tau_max - 1.0)).clip(lower=0.0)
    return contribution.mean(axis=0).rename("profile_score")


def robustness(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None) -> pd.Series:
    """Per optimizer: share of its search space that converges near its best (tasks' mean)."""
    runs = _select(runs, budget, "tune", suite)
    if runs.empty:
        return pd.Series(dtype=float, name="robustness")
    runs = runs.assign(oriented=_oriented(runs))
    per_config = runs.groupby(["task", "optimizer", "config_key"]).agg(
        converged=("success", "all"), oriented=("oriented", "mean"),
        tolerance=("tolerance", "first"),
    ).reset_index()
    shares = []
    for (_, optimizer), group in per_config.groupby(["task", "optimizer"]):
        # Oriented scores are lower-is-better: "near best" compares them as such.
        metric = Metric(name="oriented", higher_is_better=False,
                        tolerance=float(group["tolerance"].iloc[0]))
        best = metric.best(group["oriented"])
        near = np.array([metric.near_best(value, best) for value in group["oriented"]], bool)
        shares.append((optimizer, float((group["converged"] & near).mean())))
    frame = pd.DataFrame(shares, columns=["optimizer", "share"])
    return frame.groupby("optimizer")["share"].mean().rename("robustness")


def overhead(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None,
             reference: str = REFERENCE_OPTIMIZER) -> pd.DataFrame:
    """Per optimizer: time per step and memory relative to ``reference``, state per param."""
    columns = ["time_vs_sgd", "memory_vs_sgd", "state_per_param"]
    runs = latest_versions(runs)
    runs = runs[(runs["budget"] == budget) & (runs["status"] == "ok")]
    if suite is not None:
        runs = runs[runs["suite"] == suite]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    per_task = runs.groupby(["optimizer", "task", "machine"])[
        ["time_per_step", "state_bytes", "param_bytes"]].median()
    per_task["memory"] = per_task["param_bytes"] + per_task["state_bytes"]
    per_task["state_per_param"] = per_task["state_bytes"] / per_task["param_bytes"].where(
        per_task["param_bytes"] > 0)
    result = per_task.groupby("optimizer")[["state_per_param"]].median()
    result["time_vs_sgd"] = math.nan
    result["memory_vs_sgd"] = math.nan
    if reference in per_task.index.get_level_values("optimizer"):
        # Only against the reference's runs on the same task and the same machine.
        base = per_task.loc[reference][["time_per_step", "memory"]].add_suffix("_reference")
        mine = per_task[["time_per_step", "memory"]].reset_index("optimizer")
        paired = mine.join(base, how="inner")
        if not paired.empty:
            paired["time"] = paired["time_per_step"] / paired["time_per_step_reference"]
            paired["mem"] = paired["memory"] / paired["memory_reference"]
            geometric = np.exp(np.log(paired[["time", "mem"]]).groupby(paired["optimizer"]).mean())
            result["time_vs_sgd"] = geometric["time"]
            result["memory_vs_sgd"] = geometric["mem"]
    return result[columns]


def overall_table(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None,
                  tau_max: float = TAU_MAX) -> pd.DataFrame:
    """Per optimizer: profile score and rank, tasks solved, robustness, overhead vs SGD."""
    columns = ["rank", "optimizer", "profile_score", "tasks_solved", "tasks", "robustness",
               "time_vs_sgd", "memory_vs_sgd", "state_per_param", "source_hash"]
    table = task_table(runs, budget, suite)
    if table.empty:
        return pd.DataFrame(columns=columns)
    common = common_tasks(table)
    ratios = performance_ratios(common)
    # No task that every optimizer ran (disjoint coverage): no profile, the scores are NaN.
    optimizers = pd.Index(sorted(table["optimizer"].unique()), name="optimizer")
    overall = profile_score(ratios, tau_max).reindex(optimizers).to_frame()
    overall["tasks_solved"] = common[common["success_rate"] == 1.0].groupby("optimizer").size()
    overall["tasks_solved"] = overall["tasks_solved"].fillna(0).astype(int)
    overall["tasks"] = len(ratios)
    overall = overall.join(robustness(runs, budget, suite)).join(overhead(runs, budget, suite))
    versions = latest_versions(runs).drop_duplicates("optimizer").set_index("optimizer")
    overall["source_hash"] = versions["source_hash"]
    overall["rank"] = overall["profile_score"].rank(
        ascending=False, method="min", na_option="bottom").astype(int)
    overall = overall.rename_axis("optimizer").reset_index()
    return overall.sort_values(["rank", "optimizer"]).reset_index(drop=True)[columns]
