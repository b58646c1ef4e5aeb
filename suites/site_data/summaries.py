"""The numbers of the site's pages that are not a leaderboard table: per-suite counts, a
suite's best optimizers, rank cells, the scaling series, seed scores, configuration counts,
the optimizers that never got above chance.

The pages (``suites.sitegen.pages``) only lay these out; they compute no number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from suites import leaderboard
from suites.api import Chance, Metric
from suites.selection import metric_of


def task_table(runs: pd.DataFrame, budget: str) -> pd.DataFrame:
    """``leaderboard.task_table`` plus ``succeeded``, the evaluation seeds that succeeded."""
    table = leaderboard.task_table(runs, budget)
    return table.assign(
        succeeded=[round(rate * seeds) for rate, seeds in
                   zip(table["success_rate"], table["seeds"], strict=True)])


def suite_counts(table: pd.DataFrame, suites: Sequence[str]) -> list[dict[str, Any]]:
    """Per suite: how many tasks and optimizers the task table holds."""
    rows = []
    for suite in suites:
        mine = table[table["suite"] == suite] if not table.empty else table
        rows.append({"name": suite,
                     "tasks": int(mine["task"].nunique()) if len(mine) else 0,
                     "optimizers": int(mine["optimizer"].nunique()) if len(mine) else 0})
    return rows


def eval_run_count(runs: pd.DataFrame) -> int:
    return int((runs["phase"] == "eval").sum()) if not runs.empty else 0


def task_leaders(table: pd.DataFrame, tasks: Sequence[str]) -> list[dict[str, Any]]:
    """Per task: the optimizers ranked first, their score, and how many optimizers ran it."""
    rows = []
    for task in tasks:
        mine = table[table["task"] == task]
        best = mine[mine["rank"] == 1]
        rows.append({"name": task, "best": list(best["optimizer"]),
                     "best_score": float(best["score_mean"].iloc[0]) if len(best) else math.nan,
                     "optimizers": len(mine)})
    return rows


def rank_cells(table: pd.DataFrame, optimizers: Sequence[str], tasks: Sequence[str]
               ) -> list[dict[str, Any]]:
    """Optimizers × tasks: each cell ``{"rank", "score"}``, or ``None`` where it did not run."""
    cells = table.set_index(["optimizer", "task"])[["rank", "score_mean"]]
    ranking = []
    for name in optimizers:
        row = []
        for task in tasks:
            if (name, task) in cells.index:
                rank, score = cells.loc[(name, task)]
                row.append({"rank": int(rank), "score": float(score)})
            else:
                row.append(None)
        ranking.append({"optimizer": name, "cells": row})
    return ranking


def optimizers_per_task(table: pd.DataFrame) -> dict[str, int]:
    return {task: int(n) for task, n in table.groupby("task")["optimizer"].size().items()}


def scaling_series(table: pd.DataFrame, runs: pd.DataFrame, budget: str,
                   axes: Mapping[str, tuple[str, float, str]]
                   ) -> dict[str, dict[str, list[tuple[float, float, bool]]]]:
    """Panel → optimizer → (axis value, score, failed) over the tasks that ``axes`` places.

    A failed optimizer's point sits at ``failure_height``.
    """
    series: dict[str, dict[str, list[tuple[float, float, bool]]]] = {}
    for task, (_, value, panel) in axes.items():
        rows = table[table["task"] == task]
        fail_at = failure_height(runs, budget, task, rows["score_mean"])
        for row in rows.itertuples():
            score = float(row.score_mean)
            failed = not math.isfinite(score)
            if failed and not math.isfinite(fail_at):
                continue  # nothing scored on the task: a failed point has no height
            series.setdefault(panel, {}).setdefault(row.optimizer, []).append(
                (value, fail_at if failed else score, failed))
    return {panel: {name: sorted(points) for name, points in by_optimizer.items()}
            for panel, by_optimizer in sorted(series.items())}


def failure_height(runs: pd.DataFrame, budget: str, task: str, scores: pd.Series) -> float:
    """Where a plot puts a failed point of ``task``: on a steps-to-target metric the most
    steps its runs had ("not within the budget"), else the worst finite score plotted."""
    mine = runs[(runs["task"] == task) & (runs["budget"] == budget)]
    if len(mine) and pd.notna(mine["target"]).any():
        return float(mine["steps_run"].max())
    if not len(mine):
        return Metric("", higher_is_better=False).worst(scores)
    return metric_of(mine).worst(scores)


def sensitivity_series(points: pd.DataFrame, runs: pd.DataFrame, budget: str, task: str
                       ) -> dict[str, dict[str, list[tuple[float, float, bool]]]]:
    """One panel, optimizer → (step-size multiplier, mean tuning-seed score, failed) of the
    task's sensitivity runs (``leaderboard.sensitivity_points``); missing runs left out."""
    mine = points[(points["task"] == task) & (points["seeds"] > 0)]
    fail_at = failure_height(runs, budget, task, mine["score_mean"])
    series: dict[str, list[tuple[float, float, bool]]] = {}
    for row in mine.itertuples():
        failed = not row.succeeded or not math.isfinite(float(row.score_mean))
        if failed and not math.isfinite(fail_at):
            continue  # nothing scored on the task: a failed point has no height to sit at
        series.setdefault(row.optimizer, []).append(
            (float(row.multiplier), fail_at if failed else float(row.score_mean), failed))
    return {"": {name: sorted(p) for name, p in sorted(series.items())}} if series else {}


def seed_scores(table: pd.DataFrame, task: str, records: Mapping[str, dict[str, Any]],
                eval_files: Mapping[tuple[str, str, str], list[str]]) -> dict[str, list[float]]:
    """Optimizer → the score of each evaluation seed of its chosen configuration on ``task``."""
    return {row.optimizer: [float(records[f].score)
                            for f in eval_files.get((task, row.optimizer, row.config_key), [])]
            for row in table[table["task"] == task].itertuples()}


def configs_run(sweep: pd.DataFrame) -> int:
    """The most configurations the optimizer ran on any one task (``runs.sweep_frame``)."""
    return int(sweep.groupby("task")["config_key"].nunique().max()) if len(sweep) else 0


def not_above_chance(runs: pd.DataFrame, budget: str, task: str, chance: Chance) -> list[str]:
    """The optimizers none of whose runs on ``task`` at ``budget`` (tuning, evaluation,
    step-size sensitivity) scored above ``chance.ceiling``: no configuration of their grid
    and no step size tried around the chosen one trained the network (a failed run is not
    above it)."""
    mine = runs[(runs["task"] == task) & (runs["budget"] == budget)]
    best = mine.groupby("optimizer")["score"].max()
    return sorted(name for name, score in best.items() if not score > chance.ceiling)
