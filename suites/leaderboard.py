"""Scoring: from the run files to the leaderboard's tables (pandas DataFrames).

- ``task_table``: per task and optimizer, the configuration that tuning chose and its
  evaluation score, mean ± std over evaluation seeds, with the success rate (share of
  seeds with status ``ok`` and a finite score) and the rank on the task. A failed seed
  counts as the worst possible score, so the mean is finite only when every seed
  succeeded.
- ``overall_table``: per optimizer, the AlgoPerf-style performance-profile score with its
  bootstrap interval and the ranks it cannot tell apart, the step-size window, the share
  of its own grid near its best and the per-step overhead relative to SGD. Every optimizer of
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

Uncertainty (``profile_interval``): the profile score recomputed on bootstrap resamples
of the tasks and, within each task, of each optimizer's evaluation seeds (a fixed seed,
so the interval is the same on every machine); the interval is the central 95 % of the
resampled scores. ``tied_rank`` is 1 + the number of optimizers whose interval lies
wholly above this one's, written "=3" when another optimizer shares it.

Step-size window (``step_size_windows``): the sensitivity phase reruns the tuned
configuration with its ``lr_key`` × 2^k, k = −3 … 3, on the tuning seeds. A multiplier
is good when every seed succeeded and the mean score is within the task's tolerance of
the best of the seven (``Metric.near_best``); the window is the widest run of
consecutive good multipliers, as a factor (2^(k_max − k_min): ×1 … ×64). No good
multiplier: no window ("none"), counted as ×1. Overall: the geometric mean over the
tasks of the overall score. No ``lr_key``, or runs missing: NaN ("n/a").

Share of own grid near best (``grid_near_best``, formerly "robustness"): on each task, the
share of the optimizer's search space whose tuning runs all succeeded and whose mean
score lies within the task's relative ``tolerance`` of the optimizer's best
configuration; averaged over tasks. It depends on the grid the submitter chose.

Every comparison of scores (orientation, failure, ratio, "near best") is a rule of
``suites.api.Metric``; ``metric_of`` rebuilds a task's metric from its runs' columns.

Overhead: on each task, the median time per step (itself the median over a run's steps
after its warm-up) and the memory (parameters plus optimizer state) relative to ``sgd`` on
the same task and the same machine (device and host); geometric mean over the tasks that
have such a pair, and no number where none has.
``state_per_param`` is the optimizer state in bytes per parameter byte (Adam: 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suites.api import EVAL_SEED_OFFSET, Metric, step_size_variants
from suites.results import ResultStore, config_key

#: Performance profiles are integrated for τ in [1, TAU_MAX] (AlgoPerf uses 4).
TAU_MAX = 4.0
#: Bootstrap resamples of the overall score, the seed that draws them, the interval's level.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
BOOTSTRAP_LEVEL = 0.95
#: The baseline of the overhead columns.
REFERENCE_OPTIMIZER = "sgd"

RUN_COLUMNS = [
    "task", "suite", "budget", "phase", "optimizer", "source_hash", "config_key", "seed",
    "status", "score", "steps_run", "steps_to_target", "time_per_step", "wall_time",
    "state_bytes", "param_bytes", "created", "metric", "higher_is_better", "tolerance",
    "machine", "lr_key", "target",
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
            "lr_key": r["optimizer"].get("lr_key"),
            "target": _number(metric.get("target")),
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


def _select(runs: pd.DataFrame, budget: str, phase: str | tuple[str, ...], suite: str | None
            ) -> pd.DataFrame:
    runs = latest_versions(runs)
    phases = (phase,) if isinstance(phase, str) else phase
    runs = runs[(runs["budget"] == budget) & runs["phase"].isin(phases)]
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


def _evaluation_runs(runs: pd.DataFrame, budget: str, suite: str | None) -> pd.DataFrame:
    """The evaluation runs that count, with ``oriented`` scores: per (task, optimizer) those
    of the configuration evaluated most recently."""
    runs = _select(runs, budget, "eval", suite)
    if runs.empty:
        return runs.assign(oriented=pd.Series(dtype=float))
    last_config = (
        runs.groupby(["task", "optimizer", "config_key"])["created"].max().reset_index()
        .sort_values("created").groupby(["task", "optimizer"]).tail(1)
    )
    runs = runs.merge(last_config[["task", "optimizer", "config_key"]])
    return runs.assign(oriented=_oriented(runs))



def task_table(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None) -> pd.DataFrame:
    """Per (task, optimizer): chosen config, evaluation score mean ± std, success rate, rank.

    When an optimizer was evaluated with several configs on a task (tuning was redone
    with other seeds), the config evaluated most recently counts.
    """
    columns = ["suite", "task", "optimizer", "config_key", "score_mean", "score_std", "seeds",
               "success_rate", "steps_to_target", "rank", "higher_is_better"]
    runs = _evaluation_runs(runs, budget, suite)
    if runs.empty:
        return pd.DataFrame(columns=columns)
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


def profile_contribution(ratios, tau_max: float = TAU_MAX):
    """One task's share of the area under ρ(τ) on [1, τ_max], per optimizer (a frame or an
    array of ratios): the closed form ``max(0, (τ_max − r)/(τ_max − 1))``."""
    return np.maximum((tau_max - ratios) / (tau_max - 1.0), 0.0)


def profile_score(ratios: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.Series:
    """Area under ρ(τ) on [1, τ_max], normalized to [0, 1] (exact, per-task closed form)."""
    return profile_contribution(ratios, tau_max).mean(axis=0).rename("profile_score")


def grid_near_best(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None
                   ) -> pd.Series:
    """Per optimizer: share of its own search space that converges near its best (tasks'
    mean). It rewards a grid listed close to the best, hence not the sensitivity score."""
    runs = _select(runs, budget, "tune", suite)
    if runs.empty:
        return pd.Series(dtype=float, name="grid_near_best")
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
    return frame.groupby("optimizer")["share"].mean().rename("grid_near_best")


# --------------------------------------------------------------------------- step size


def sensitivity_points(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None
                       ) -> pd.DataFrame:
    """Per (task, optimizer, k): the tuned configuration with its step size × 2^k on the
    tuning seeds: mean score (NaN: not run), seeds, whether all succeeded, near best.

    The runs are found by configuration, whatever their phase: k = 0 is the tuning run of
    the chosen configuration, and a variant the grid holds is that grid run.
    """
    columns = ["task", "optimizer", "exponent", "multiplier", "score_mean", "seeds",
               "succeeded", "near_best"]
    table = task_table(runs, budget, suite)
    tuning = _select(runs, budget, ("tune", "sensitivity"), suite)
    tuning = tuning[tuning["seed"] < EVAL_SEED_OFFSET]
    if table.empty or tuning.empty:
        return pd.DataFrame(columns=columns)
    tuning = tuning.assign(oriented=_oriented(tuning))
    per_config = tuning.groupby(["task", "optimizer", "config_key"]).agg(
        oriented=("oriented", "mean"), seeds=("seed", "nunique"), succeeded=("success", "all"),
        tolerance=("tolerance", "first"))
    lr_keys = tuning.dropna(subset=["lr_key"]).groupby("optimizer")["lr_key"].first()
    rows = []
    for row in table.itertuples():
        chosen = json.loads(row.config_key)
        variants = step_size_variants(chosen, lr_keys.get(row.optimizer))
        points = []
        for k, config in variants:
            key = (row.task, row.optimizer, config_key(config))
            found = per_config.loc[key] if key in per_config.index else None
            points.append({
                "task": row.task, "optimizer": row.optimizer, "exponent": k,
                "multiplier": 2.0**k,
                "oriented": math.nan if found is None else float(found["oriented"]),
                "seeds": 0 if found is None else int(found["seeds"]),
                "succeeded": found is not None and bool(found["succeeded"]),
                "tolerance": float(per_config["tolerance"].iloc[0]) if found is None
                else float(found["tolerance"]),
            })
        # Oriented scores are lower-is-better: "near best" compares them as such.
        finite = [p["oriented"] for p in points if p["succeeded"]]
        for point in points:
            metric = Metric(name="oriented", higher_is_better=False,
                            tolerance=point.pop("tolerance"))
            best = metric.best(finite)
            point["near_best"] = point["succeeded"] and metric.near_best(point["oriented"], best)
            oriented = point.pop("oriented")
            point["score_mean"] = -oriented if row.higher_is_better else oriented
            rows.append(point)
    return pd.DataFrame(rows, columns=columns)


def step_size_windows(points: pd.DataFrame) -> pd.DataFrame:
    """Per (task, optimizer) of ``sensitivity_points``: ``window``, the widest factor
    2^(k_max − k_min) over consecutive multipliers that are near best on every seed, 1
    with ``found`` False when none is; NaN when a multiplier has no runs."""
    rows = []
    for (task, optimizer), group in points.groupby(["task", "optimizer"], sort=True):
        group = group.sort_values("exponent")
        if (group["seeds"] == 0).any():
            rows.append((task, optimizer, math.nan, False))
            continue
        longest = run = 0
        for good in group["near_best"]:
            run = run + 1 if good else 0
            longest = max(longest, run)
        rows.append((task, optimizer, 2.0 ** max(longest - 1, 0), longest > 0))
    return pd.DataFrame(rows, columns=["task", "optimizer", "window", "found"])


def overall_step_size_window(runs: pd.DataFrame, budget: str = "quick",
                             suite: str | None = None) -> pd.Series:
    """Per optimizer: the geometric mean of its step-size windows over the tasks of the
    overall score (``common_tasks``); NaN ("n/a") where none was measured."""
    table = common_tasks(task_table(runs, budget, suite))
    windows = step_size_windows(sensitivity_points(runs, budget, suite))
    windows = windows[windows["task"].isin(set(table["task"]))].dropna(subset=["window"])
    if windows.empty:
        return pd.Series(dtype=float, name="step_window")
    # Windows are powers of two: in log2 the mean of whole octaves stays exact.
    return np.exp2(np.log2(windows["window"]).groupby(windows["optimizer"]).mean()).rename(
        "step_window")


# --------------------------------------------------------------------------- uncertainty


def profile_interval(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None,
                     tau_max: float = TAU_MAX, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, level: float = BOOTSTRAP_LEVEL
                     ) -> pd.DataFrame:
    """Per optimizer: the central ``level`` interval of the profile score over bootstrap
    resamples of the common tasks and, within each, of each optimizer's evaluation seeds."""
    evaluation = _evaluation_runs(runs, budget, suite)
    tasks = sorted(set(common_tasks(task_table(runs, budget, suite))["task"]))
    if not tasks:
        return pd.DataFrame(columns=["score_low", "score_high"])
    optimizers = sorted(evaluation["optimizer"].unique())
    rng = np.random.default_rng(seed)
    # contribution[t, b, o]: optimizer o's share of the profile on task t in resample b.
    contribution = np.empty((len(tasks), resamples, len(optimizers)))
    for t, task in enumerate(tasks):
        rows = evaluation[evaluation["task"] == task]
        metric = metric_of(rows)
        oriented = np.empty((resamples, len(optimizers)))
        for o, name in enumerate(optimizers):
            seeds = rows.loc[rows["optimizer"] == name, "oriented"].to_numpy(dtype=float)
            picks = rng.integers(len(seeds), size=(resamples, len(seeds)))
            with np.errstate(invalid="ignore"):
                oriented[:, o] = seeds[picks].mean(axis=1)
        scores = np.where(np.isinf(oriented), metric.failed_score,
                          -oriented if metric.higher_is_better else oriented)
        for b in range(resamples):
            best = metric.best(scores[b])
            ratios = np.array([metric.ratio(float(score), best) for score in scores[b]])
            contribution[t, b] = profile_contribution(ratios, tau_max)
    picked = rng.integers(len(tasks), size=(resamples, len(tasks)))
    samples = contribution[picked, np.arange(resamples)[:, None]].mean(axis=1)
    tail = (1 - level) / 2
    return pd.DataFrame({"score_low": np.quantile(samples, tail, axis=0),
                         "score_high": np.quantile(samples, 1 - tail, axis=0)},
                        index=pd.Index(optimizers, name="optimizer"))


def tied_ranks(low: pd.Series, high: pd.Series) -> pd.Series:
    """1 + the number of optimizers whose interval lies wholly above each one's; "=r"
    where another shares r (their scores are not told apart); "-" without an interval."""
    ranks = pd.Series({name: 1 + int((low > high[name]).sum()) if math.isfinite(high[name])
                       else 0 for name in low.index})
    shared = ranks.map(ranks.value_counts())
    return pd.Series({name: "-" if rank == 0 else (f"={rank}" if shared[name] > 1 else str(rank))
                      for name, rank in ranks.items()}, name="tied_rank")


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
    """Per optimizer: profile score, its interval and rank (ties marked), tasks solved, the
    step-size window, the share of its own grid near best, overhead vs SGD."""
    columns = ["rank", "tied_rank", "optimizer", "profile_score", "score_low", "score_high",
               "tasks_solved", "tasks", "step_window", "grid_near_best",
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
    overall = overall.join(profile_interval(runs, budget, suite, tau_max))
    overall = overall.join(overall_step_size_window(runs, budget, suite))
    overall = overall.join(grid_near_best(runs, budget, suite)).join(overhead(runs, budget, suite))
    versions = latest_versions(runs).drop_duplicates("optimizer").set_index("optimizer")
    overall["source_hash"] = versions["source_hash"]
    overall["rank"] = overall["profile_score"].rank(
        ascending=False, method="min", na_option="bottom").astype(int)
    overall["tied_rank"] = tied_ranks(overall["score_low"].astype(float),
                                      overall["score_high"].astype(float))
    overall = overall.rename_axis("optimizer").reset_index()
    return overall.sort_values(["rank", "optimizer"]).reset_index(drop=True)[columns]
