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
resampled scores. Ties come from the paired differences on the same resamples
(``pairwise_outcomes``): A beats B when the bootstrap p-value of score_A - score_B is a
discovery at a 5 % false-discovery rate over all pairs (Benjamini-Hochberg);
``tied_rank`` is 1 + the number of optimizers that beat this one, written "=3" when
another optimizer shares it; ``rank_groups`` counts the distinct ranks.

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
import logging
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from suites.api import EVAL_SEED_OFFSET, step_size_variants
from suites.results import config_key
from suites.selection import latest_versions as latest_versions
from suites.selection import load_runs as load_runs
from suites.selection import metric_of as metric_of
from suites.selection import of_track as of_track
from suites.selection import once_per_runs
from suites.selection import oriented as _oriented
from suites.selection import runs_frame as runs_frame
from suites.selection import select as _select
from suites.selection import superseded_versions as superseded_versions

log = logging.getLogger(__name__)

#: Performance profiles are integrated for τ in [1, TAU_MAX] (AlgoPerf uses 4).
TAU_MAX = 4.0
#: Bootstrap resamples of the overall score, the seed that draws them, the interval's level.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
BOOTSTRAP_LEVEL = 0.95
#: Fewer common tasks than this: no interval is shown (resampling one or two tasks says
#: nothing about a score's spread over tasks).
MIN_INTERVAL_TASKS = 3
#: The baseline of the overhead columns.
REFERENCE_OPTIMIZER = "sgd"

# --------------------------------------------------------------------------- per task

@once_per_runs
def _evaluation_runs(runs: pd.DataFrame, budget: str, suite: str | None,
                     phase: str = "eval") -> pd.DataFrame:
    """The evaluation runs that count, with ``oriented`` scores: per (task, optimizer) those
    of the configuration evaluated most recently. ``phase="held_out"``: those of the
    held-out variant tasks instead."""
    runs = _select(runs, budget, phase, suite)
    if runs.empty:
        return runs.assign(oriented=pd.Series(dtype=float))
    last_config = (
        runs.groupby(["task", "optimizer", "config_key"])["created"].max().reset_index()
        .sort_values("created").groupby(["task", "optimizer"]).tail(1)
    )
    runs = runs.merge(last_config[["task", "optimizer", "config_key"]])
    return runs.assign(oriented=_oriented(runs))



@once_per_runs
def task_table(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None,
               phase: str = "eval") -> pd.DataFrame:
    """Per (task, optimizer): chosen config, evaluation score mean ± std, success rate, rank.

    When an optimizer was evaluated with several configs on a task (tuning was redone
    with other seeds), the config evaluated most recently counts.
    """
    columns = ["suite", "task", "optimizer", "config_key", "score_mean", "score_std", "seeds",
               "success_rate", "evals_to_target", "rank", "metric", "higher_is_better",
               "tolerance", "chance"]
    if suite is not None:  # a suite's rows of the whole table: ranks are per task
        every = task_table(runs, budget, None, phase)
        return every[every["suite"] == suite].reset_index(drop=True)
    runs = _evaluation_runs(runs, budget, suite, phase)
    if runs.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    metrics = {task: metric_of(group) for task, group in runs.groupby("task", sort=False)}
    for (task, optimizer), group in runs.groupby(["task", "optimizer"], sort=True):
        metric = metrics[task]
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
            "score_mean": metric.from_oriented(mean),
            "score_std": std,
            "seeds": len(group),
            "success_rate": float(group["success"].mean()),
            # Mean over the seeds that reached the metric's target (NaN: none, or no target),
            # in gradient evaluations.
            "evals_to_target": float(group["evals_to_target"].mean()),
            "metric": metric.name,
            "higher_is_better": metric.higher_is_better,
            "tolerance": metric.tolerance,
            "chance": metric.chance,
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
    """Tasks × optimizers: each score relative to the task's best (≥ 1; ``inf`` = failed),
    an accuracy's on its lift above the chance level its runs recorded (``Metric.ratio``)."""
    if table.empty:
        return pd.DataFrame()
    optimizers = sorted(table["optimizer"].unique())
    ratios = {}
    for task, group in table.groupby("task", sort=True):
        metric = metric_of(group)
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
    ).reset_index()
    metrics = {task: metric_of(rows) for task, rows in runs.groupby("task", sort=False)}
    shares = []
    for (task, optimizer), group in per_config.groupby(["task", "optimizer"]):
        metric = metrics[task]
        scores = [metric.from_oriented(float(value)) for value in group["oriented"]]
        best = metric.best(scores)
        near = np.array([metric.near_best(score, best) for score in scores], bool)
        shares.append((optimizer, float((group["converged"] & near).mean())))
    frame = pd.DataFrame(shares, columns=["optimizer", "share"])
    return frame.groupby("optimizer")["share"].mean().rename("grid_near_best")


# --------------------------------------------------------------------------- step size


@once_per_runs
def sensitivity_points(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None
                       ) -> pd.DataFrame:
    """Per (task, optimizer, k): the tuned configuration with its step size × 2^k on the
    tuning seeds: mean score (NaN: not run), seeds, whether all succeeded, near best.

    The runs are found by configuration, whatever their phase: k = 0 is the tuning run of
    the chosen configuration, and a variant the grid holds is that grid run.
    """
    columns = ["task", "optimizer", "exponent", "multiplier", "score_mean", "seeds",
               "succeeded", "near_best"]
    if suite is not None:  # a suite's rows of the whole table: each task's are its own
        every = sensitivity_points(runs, budget, None)
        tasks = set(task_table(runs, budget, suite)["task"])
        return every[every["task"].isin(tasks)].reset_index(drop=True)
    table = task_table(runs, budget, suite)
    tuning = _select(runs, budget, ("tune", "sensitivity"), suite)
    tuning = tuning[tuning["seed"] < EVAL_SEED_OFFSET]
    if table.empty or tuning.empty:
        return pd.DataFrame(columns=columns)
    tuning = tuning.assign(oriented=_oriented(tuning))
    per_config = tuning.groupby(["task", "optimizer", "config_key"]).agg(
        oriented=("oriented", "mean"), seeds=("seed", "nunique"), succeeded=("success", "all"))
    metrics = {task: metric_of(rows) for task, rows in tuning.groupby("task", sort=False)}
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
            })
        metric = metrics.get(row.task) or metric_of(table[table["task"] == row.task])
        for point in points:
            point["score_mean"] = metric.from_oriented(point.pop("oriented"))
        best = metric.best(p["score_mean"] for p in points if p["succeeded"])
        for point in points:
            point["near_best"] = point["succeeded"] and metric.near_best(point["score_mean"], best)
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


def profile_samples(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None,
                    tau_max: float = TAU_MAX, resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED, phase: str = "eval") -> pd.DataFrame:
    """The profile score of every optimizer (columns) on each bootstrap resample (rows):
    the common tasks drawn with replacement, the same draw for every optimizer, and within
    each task each optimizer's evaluation seeds. Empty without a common task."""
    evaluation = _evaluation_runs(runs, budget, suite, phase)
    tasks = sorted(set(common_tasks(task_table(runs, budget, suite, phase))["task"]))
    if not tasks:
        return pd.DataFrame()
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
        scores = metric.from_oriented(oriented)  # a failure's +inf: the failed score
        ratios = metric.ratios(scores, metric.best_of_rows(scores))
        contribution[t] = profile_contribution(ratios, tau_max)
    picked = rng.integers(len(tasks), size=(resamples, len(tasks)))
    samples = contribution[picked, np.arange(resamples)[:, None]].mean(axis=1)
    frame = pd.DataFrame(samples, columns=pd.Index(optimizers, name="optimizer"))
    frame.attrs["tasks"] = len(tasks)
    return frame


def profile_interval(runs: pd.DataFrame, budget: str = "quick", suite: str | None = None,
                     tau_max: float = TAU_MAX, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, level: float = BOOTSTRAP_LEVEL,
                     samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per optimizer: the central ``level`` interval of its profile score over the
    bootstrap resamples (``profile_samples``); NaN with fewer than ``MIN_INTERVAL_TASKS``
    common tasks."""
    if samples is None:
        samples = profile_samples(runs, budget, suite, tau_max, resamples, seed)
    if samples.empty:
        return pd.DataFrame(columns=["score_low", "score_high"])
    if samples.attrs.get("tasks", MIN_INTERVAL_TASKS) < MIN_INTERVAL_TASKS:
        return pd.DataFrame({"score_low": math.nan, "score_high": math.nan},
                            index=samples.columns).rename_axis("optimizer")
    tail = (1 - level) / 2
    return pd.DataFrame({"score_low": samples.quantile(tail), "score_high":
                         samples.quantile(1 - tail)}).rename_axis("optimizer")


def pairwise_outcomes(samples: pd.DataFrame, level: float = BOOTSTRAP_LEVEL) -> pd.DataFrame:
    """Every ordered pair (a, b): the mean paired difference of their profile scores over
    the same resamples, its two-sided bootstrap p-value (twice the smaller share of
    resamples on either side of 0, at most 1), and the outcome for a: "beats", "loses" or
    "tied". Differences are called at false-discovery rate ``1 - level`` over the
    unordered pairs (Benjamini-Hochberg), so that with 14 optimizers (91 pairs) a few
    lucky resamples do not split a tie."""
    names = list(samples.columns)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = (samples[a] - samples[b]).to_numpy(dtype=float)
            p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
            rows.append((a, b, float(diff.mean()), p))
    pairs = pd.DataFrame(rows, columns=["a", "b", "difference", "p_value"])
    pairs["significant"] = benjamini_hochberg(pairs["p_value"], 1 - level)
    mirrored = pairs.rename(columns={"a": "b", "b": "a"}).assign(
        difference=lambda f: -f["difference"])
    both = pd.concat([pairs, mirrored], ignore_index=True)
    both["outcome"] = np.where(~both["significant"], "tied",
                               np.where(both["difference"] > 0, "beats", "loses"))
    return both.sort_values(["a", "b"]).reset_index(drop=True)


def benjamini_hochberg(p_values: pd.Series, rate: float) -> pd.Series:
    """Which of ``p_values`` are discoveries at false-discovery rate ``rate``: the k
    smallest, for the largest k with p_(k) <= k / m * rate."""
    p = p_values.to_numpy(dtype=float)
    order = np.argsort(p, kind="stable")
    below = p[order] <= rate * np.arange(1, len(p) + 1) / max(len(p), 1)
    found = np.zeros(len(p), dtype=bool)
    if below.any():
        found[order[: int(np.nonzero(below)[0].max()) + 1]] = True
    return pd.Series(found, index=p_values.index)


def paired_ranks(outcomes: pd.DataFrame, names: Iterable[str],
                 ranked: Iterable[str] | None = None) -> pd.Series:
    """1 + the number of optimizers that beat each one (``pairwise_outcomes``), written
    "=r" where another shares r; "-" for a name not ``ranked`` (default: those with
    outcomes; no common task)."""
    beaten_by = outcomes[outcomes["outcome"] == "loses"].groupby("a").size()
    known = set(outcomes["a"]) if ranked is None else set(ranked)
    ranks = pd.Series({name: 1 + int(beaten_by.get(name, 0)) if name in known else 0
                       for name in names}, dtype=int)
    shared = ranks.map(ranks.value_counts())
    return pd.Series({name: "-" if rank == 0 else (f"={rank}" if shared[name] > 1 else str(rank))
                      for name, rank in ranks.items()}, name="tied_rank")


def pairwise_matrix(overall: pd.DataFrame) -> pd.DataFrame:
    """``overall_table``'s pairwise outcomes as a matrix in rank order: row a, column b
    holds "beats", "tied" or "loses" (a against b), the diagonal "")."""
    names = list(overall["optimizer"])
    outcomes = overall.attrs.get("pairwise")
    matrix = pd.DataFrame("", index=pd.Index(names, name="optimizer"), columns=names)
    if outcomes is not None:
        for a, b, outcome in outcomes[["a", "b", "outcome"]].itertuples(index=False):
            if a in matrix.index and b in matrix.columns:
                matrix.loc[a, b] = outcome
    return matrix


def variant_table(runs: pd.DataFrame, budget: str = "quick", tau_max: float = TAU_MAX,
                  resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                  level: float = BOOTSTRAP_LEVEL) -> tuple[pd.DataFrame, dict[str, float]]:
    """Does the ranking generalize? Per optimizer with runs on both: the profile score and
    rank over the public tasks and over the held-out variants (each evaluated with the
    configuration tuned on its public task), and the change of rank (positive: it ranks
    better on the variants); with Kendall's tau-b between the two orders of the scores and
    its central ``level`` interval over paired bootstrap resamples of both task sets.
    Empty, and tau NaN, without held-out runs."""
    columns = ["optimizer", "public_score", "public_rank", "variant_score", "variant_rank",
               "rank_change"]
    nan = {"tau": math.nan, "tau_low": math.nan, "tau_high": math.nan, "variant_tasks": 0}
    held = task_table(runs, budget, phase="held_out")
    public = task_table(runs, budget)
    if held.empty or public.empty:
        return pd.DataFrame(columns=columns), nan
    held_ratios = performance_ratios(common_tasks(held))
    public_ratios = performance_ratios(common_tasks(public))
    both = sorted(set(held_ratios.columns) & set(public_ratios.columns))
    if len(both) < 2 or held_ratios.empty:
        return pd.DataFrame(columns=columns), nan
    table = pd.DataFrame({"public_score": profile_score(public_ratios[both], tau_max),
                          "variant_score": profile_score(held_ratios[both], tau_max)})
    table["public_rank"] = table["public_score"].rank(ascending=False, method="min").astype(int)
    table["variant_rank"] = table["variant_score"].rank(ascending=False, method="min").astype(int)
    table["rank_change"] = table["public_rank"] - table["variant_rank"]
    from scipy import stats  # here: importing it costs a second of every lsb command

    tau = float(stats.kendalltau(table["public_score"], table["variant_score"]).statistic)
    public_samples = profile_samples(runs, budget, None, tau_max, resamples, seed)[both]
    held_samples = profile_samples(runs, budget, None, tau_max, resamples, seed + 1,
                                   phase="held_out")[both]
    taus = np.array([stats.kendalltau(a, b).statistic for a, b in
                     zip(public_samples.to_numpy(), held_samples.to_numpy(), strict=True)])
    taus = taus[np.isfinite(taus)]
    tail = (1 - level) / 2
    low, high = (np.quantile(taus, [tail, 1 - tail]) if len(taus) else (math.nan, math.nan))
    table = table.rename_axis("optimizer").reset_index().sort_values(
        ["variant_rank", "optimizer"]).reset_index(drop=True)
    return table[columns], {"tau": tau, "tau_low": float(low), "tau_high": float(high),
                            "variant_tasks": len(held_ratios)}


def rank_groups(tied: pd.Series) -> int:
    """How many distinct ranks ``paired_ranks`` gives (optimizers told apart into groups)."""
    return int(tied[tied != "-"].str.lstrip("=").nunique())


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
    samples = profile_samples(runs, budget, suite, tau_max)
    overall = overall.join(profile_interval(runs, budget, suite, tau_max, samples=samples))
    overall = overall.join(overall_step_size_window(runs, budget, suite))
    overall = overall.join(grid_near_best(runs, budget, suite)).join(overhead(runs, budget, suite))
    versions = latest_versions(runs).drop_duplicates("optimizer").set_index("optimizer")
    overall["source_hash"] = versions["source_hash"]
    overall["rank"] = overall["profile_score"].rank(
        ascending=False, method="min", na_option="bottom").astype(int)
    outcomes = pairwise_outcomes(samples) if not samples.empty else pd.DataFrame(
        columns=["a", "b", "difference", "p_value", "significant", "outcome"])
    overall["tied_rank"] = paired_ranks(outcomes, overall.index, samples.columns)
    overall.attrs["pairwise"] = outcomes  # read by pairwise_matrix, kept by site_data
    overall = overall.rename_axis("optimizer").reset_index()
    # In the order of the paired ranks (an optimizer nobody beats first), then of the score.
    paired = pd.to_numeric(overall["tied_rank"].str.lstrip("="), errors="coerce")
    overall = overall.assign(_paired=paired.fillna(len(overall) + 1))
    overall = overall.sort_values(["_paired", "rank", "optimizer"]).reset_index(drop=True)
    overall.attrs["pairwise"] = outcomes
    return overall[columns]
