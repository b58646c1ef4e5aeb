"""Leaderboard math on a hand-made results set, against values computed by hand.

Two tasks, "t/steps" (lower is better) and "t/accuracy" (higher is better), and three
optimizers. Evaluation scores (two seeds each):

    t/steps      sgd 4, 4      adam 2, 2      lion 3, 5
    t/accuracy   sgd .5, .5    adam 1, 1      lion 1, diverged

Ratios to the best: t/steps sgd 2, adam 1, lion 2; t/accuracy sgd 2, adam 1, lion inf.
With τ_max = 4 a task adds (4 − r) / 3: sgd (2/3 + 2/3) / 2 = 2/3, adam 1,
lion (2/3 + 0) / 2 = 1/3.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from suites import leaderboard
from suites.results import SCHEMA_VERSION

STEPS = {"name": "steps", "higher_is_better": False, "tolerance": 0.1}
ACCURACY = {"name": "accuracy", "higher_is_better": True, "tolerance": 0.1}
#: Median time per step in seconds and optimizer-state bytes per (optimizer, task).
COST = {
    ("sgd", "t/steps"): (1e-3, 0), ("sgd", "t/accuracy"): (2e-3, 0),
    ("adam", "t/steps"): (2e-3, 200), ("adam", "t/accuracy"): (2e-3, 200),
    ("lion", "t/steps"): (1e-3, 100), ("lion", "t/accuracy"): (1e-3, 100),
}


def record(task, optimizer, phase, lr, seed, score, status="ok", source_hash="current",
           created="2026-01-02T00:00:00+00:00"):
    seconds, state = COST.get((optimizer, task), (1e-3, 0))
    return {
        "schema_version": SCHEMA_VERSION, "task": task, "suite": "t",
        "metric": STEPS if task == "t/steps" else ACCURACY, "budget": "quick", "phase": phase,
        "optimizer": {"name": optimizer, "source_hash": source_hash, "path": f"{optimizer}.py"},
        "hparams": {"lr": lr}, "seed": seed, "status": status, "score": score,
        "steps_run": 10, "timing": {"time_per_step_s": seconds, "wall_time_s": 1.0},
        "state_bytes": state, "param_bytes": 100, "created": created,
    }


def evaluation(task, optimizer, lr, scores):
    return [
        record(task, optimizer, "eval", lr, 1000 + i, s,
               status="ok" if math.isfinite(s) else "diverged")
        for i, s in enumerate(scores)
    ]


def tuning(task, optimizer, scores_by_lr):
    return [
        record(task, optimizer, "tune", lr, 0, s,
               status="ok" if math.isfinite(s) else "diverged")
        for lr, s in scores_by_lr.items()
    ]


@pytest.fixture
def runs() -> pd.DataFrame:
    inf = math.inf
    records = [
        *evaluation("t/steps", "sgd", 0.1, [4, 4]),
        *evaluation("t/steps", "adam", 0.01, [2, 2]),
        *evaluation("t/steps", "lion", 0.001, [3, 5]),
        *evaluation("t/accuracy", "sgd", 0.1, [0.5, 0.5]),
        *evaluation("t/accuracy", "adam", 0.01, [1.0, 1.0]),
        *evaluation("t/accuracy", "lion", 0.001, [1.0, -inf]),
        # Tuning. adam: 2 of 4 configs near its best on t/steps, 2 of 2 on t/accuracy.
        *tuning("t/steps", "adam", {0.01: 2.0, 0.02: 2.1, 0.03: 3.0, 0.04: inf}),
        *tuning("t/accuracy", "adam", {0.01: 1.0, 0.02: 0.95}),
        *tuning("t/steps", "sgd", {0.1: 4.0}),
        *tuning("t/accuracy", "sgd", {0.1: 0.5}),
        # lion: 1 of 2 on t/steps; nothing converges on t/accuracy.
        *tuning("t/steps", "lion", {0.001: 3.0, 0.002: inf}),
        *tuning("t/accuracy", "lion", {0.001: -inf}),
        # An older version of adam, better everywhere: superseded, so ignored.
        *[dict(r, created="2026-01-01T00:00:00+00:00") for r in (
            record("t/steps", "adam", "eval", 0.01, 1000, 1.0, source_hash="old"),
            record("t/accuracy", "adam", "eval", 0.01, 1000, 2.0, source_hash="old"),
        )],
    ]
    return leaderboard.runs_frame(records)


def test_task_table_mean_std_success_and_rank(runs):
    table = leaderboard.task_table(runs, "quick").set_index(["task", "optimizer"])
    steps = table.loc["t/steps"]
    assert steps.loc["adam", "score_mean"] == 2 and steps.loc["adam", "rank"] == 1
    assert steps.loc["lion", "score_mean"] == 4
    assert steps.loc["lion", "score_std"] == pytest.approx(math.sqrt(2))
    assert steps.loc["sgd", "rank"] == steps.loc["lion", "rank"] == 2
    accuracy = table.loc["t/accuracy"]
    assert list(accuracy.sort_values("rank").index) == ["adam", "sgd", "lion"]
    assert accuracy.loc["lion", "success_rate"] == 0.5
    assert accuracy.loc["lion", "score_mean"] == -math.inf
    assert accuracy.loc["adam", "config_key"] == '{"lr":0.01}'


def test_performance_ratios_and_profile_score(runs):
    ratios = leaderboard.performance_ratios(leaderboard.task_table(runs, "quick"))
    assert ratios.loc["t/steps"].to_dict() == {"adam": 1.0, "lion": 2.0, "sgd": 2.0}
    assert ratios.loc["t/accuracy"].to_dict() == {"adam": 1.0, "lion": math.inf, "sgd": 2.0}
    score = leaderboard.profile_score(ratios, tau_max=4.0)
    assert score.to_dict() == pytest.approx({"adam": 1.0, "sgd": 2 / 3, "lion": 1 / 3})
    profile = leaderboard.performance_profile(ratios, [1.0, 2.0, 10.0])
    assert profile["lion"].tolist() == [0.0, 0.5, 0.5]
    assert profile["sgd"].tolist() == [0.0, 1.0, 1.0]


def test_a_task_some_optimizer_has_not_run_is_left_out_of_the_overall_score(runs):
    partial = runs[~((runs.optimizer == "sgd") & (runs.task == "t/steps"))]
    table = leaderboard.task_table(partial)
    assert leaderboard.performance_ratios(table).loc["t/steps", "sgd"] == math.inf
    assert set(leaderboard.common_tasks(table)["task"]) == {"t/accuracy"}
    overall = leaderboard.overall_table(partial, "quick").set_index("optimizer")
    assert (overall["tasks"] == 1).all() and (overall["tasks_solved"] <= 1).all()
    # On t/accuracy alone adam is best and lion failed, as in the full table.
    assert overall["rank"].to_dict() == {"adam": 1, "sgd": 2, "lion": 3}
    assert overall.loc["sgd", "profile_score"] == pytest.approx(2 / 3)


def test_robustness_share_of_configs_near_the_best(runs):
    robustness = leaderboard.robustness(runs, "quick")
    assert robustness.to_dict() == pytest.approx({"adam": 0.75, "sgd": 1.0, "lion": 0.25})


def test_overhead_relative_to_sgd(runs):
    overhead = leaderboard.overhead(runs, "quick")
    assert overhead.loc["sgd"].tolist() == pytest.approx([1.0, 1.0, 0.0])
    # adam: time 2x then 1x -> geometric mean sqrt(2); memory (100 + 200) / 100 = 3.
    assert overhead.loc["adam"].tolist() == pytest.approx([math.sqrt(2), 3.0, 2.0])
    assert overhead.loc["lion", "time_vs_sgd"] == pytest.approx(math.sqrt(0.5))


def test_only_the_latest_source_version_counts(runs):
    assert set(leaderboard.latest_versions(runs)["source_hash"]) == {"current"}
    old = leaderboard.superseded_versions(runs)
    assert old.to_dict("records") == [{"optimizer": "adam", "source_hash": "old", "runs": 2}]


def test_overall_table(runs):
    overall = leaderboard.overall_table(runs, "quick").set_index("optimizer")
    assert overall["rank"].to_dict() == {"adam": 1, "sgd": 2, "lion": 3}
    assert overall.loc["adam", "tasks_solved"] == 2 and overall.loc["lion", "tasks_solved"] == 1
    assert overall.loc["adam", "robustness"] == pytest.approx(0.75)
    assert (overall["tasks"] == 2).all()


def test_overhead_compares_only_with_sgd_on_the_same_machine():
    from suites import leaderboard

    def run(optimizer, task, machine, seconds):
        return {"task": task, "budget": "quick", "phase": "eval", "status": "ok",
                "optimizer": {"name": optimizer, "source_hash": optimizer},
                "hparams": {"lr": 0.1}, "seed": 1000, "score": 1.0, "steps_run": 10,
                "timing": {"time_per_step_s": seconds}, "state_bytes": 8, "param_bytes": 8,
                "created": "2026-12-01T00:00:00+00:00", "env": {"device": "cpu: x",
                                                                "hostname": machine}}

    runs = leaderboard.runs_frame([
        run("sgd", "t/a", "here", 1.0), run("adam", "t/a", "here", 3.0),
        run("sgd", "t/b", "here", 1.0), run("adam", "t/b", "elsewhere", 100.0),
        run("lion", "t/a", "elsewhere", 2.0),
    ])
    table = leaderboard.overhead(runs)
    assert table.loc["adam", "time_vs_sgd"] == pytest.approx(3.0)  # t/b ran on another host
    assert math.isnan(table.loc["lion", "time_vs_sgd"])  # no sgd run shares its machine
