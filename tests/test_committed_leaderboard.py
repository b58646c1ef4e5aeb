"""The leaderboard committed in ``results/``: what ``lsb show`` and the site rank."""

from __future__ import annotations

from pathlib import Path

import pytest

from suites import leaderboard
from suites.registry import builtin_optimizer_paths
from suites.site_data import load_results

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def current():
    """The built-ins' runs (``make demo`` adds its example optimizer's beside them)."""
    results = load_results(RESULTS)
    assert not results.problems, results.problems
    return results.current[results.current["optimizer"].isin(set(builtin_optimizer_paths()))]


def test_every_builtin_is_ranked_on_every_task_including_deep_learning(current):
    table = leaderboard.task_table(current, "quick")
    assert set(table["optimizer"]) == set(builtin_optimizer_paths())
    common = leaderboard.common_tasks(table)
    assert set(common["task"]) == set(table["task"])  # no task is ranked on its own
    assert {"lra/listops", "lra/pathfinder"} <= set(common["task"])
    assert {task.split("/", 1)[0] for task in common["task"]} == {"chain", "valley", "lra"}


def test_the_overall_score_counts_every_task(current):
    overall = leaderboard.overall_table(current, "quick")
    assert len(overall) == len(builtin_optimizer_paths())
    assert set(overall["tasks"]) == {leaderboard.task_table(current, "quick")["task"].nunique()}


def test_every_accuracy_is_scored_above_the_chance_level_its_runs_recorded(current):
    lra = current[current["suite"] == "lra"]
    assert len(lra) and lra["chance"].notna().all() and lra["chance_ceiling"].notna().all()
    table = leaderboard.task_table(current, "quick").set_index(["task", "optimizer"])
    # An optimizer that stays at Pathfinder's chance (50 %) earns no profile area there.
    pathfinder = table.loc["lra/pathfinder"]
    at_chance = pathfinder[pathfinder["success_rate"] == 0].index
    assert len(at_chance) and set(at_chance) >= {"pgd", "grasp"}
    ratios = leaderboard.performance_ratios(leaderboard.common_tasks(table.reset_index()))
    assert (ratios.loc["lra/pathfinder", list(at_chance)] == float("inf")).all()
