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

import functools
import math

import numpy as np
import pandas as pd
import pytest

from suites import leaderboard
from suites.record import MetricRecord, OptimizerRef, RunResult, RunSpec

STEPS = {"name": "steps", "higher_is_better": False, "tolerance": 0.1}
ACCURACY = {"name": "accuracy", "higher_is_better": True, "tolerance": 0.1}
#: Median time per step in seconds and optimizer-state bytes per (optimizer, task).
COST = {
    ("sgd", "t/steps"): (1e-3, 0), ("sgd", "t/accuracy"): (2e-3, 0),
    ("adam", "t/steps"): (2e-3, 200), ("adam", "t/accuracy"): (2e-3, 200),
    ("lion", "t/steps"): (1e-3, 100), ("lion", "t/accuracy"): (1e-3, 100),
}


def record(task, optimizer, phase, lr, seed, score, status="ok", source_hash="current",
           created="2026-01-02T00:00:00+00:00", lr_key=None, machine="cpu-test",
           seconds=None):
    cost, state = COST.get((optimizer, task), (1e-3, 0))
    spec = RunSpec(task=task, budget="quick", phase=phase, hparams={"lr": lr}, seed=seed,
                   optimizer=OptimizerRef(name=optimizer, source_hash=source_hash,
                                          path=f"{optimizer}.py", lr_key=lr_key))
    return RunResult(
        spec=spec, suite=task.split("/")[0],
        metric=MetricRecord(**(STEPS if task.endswith("steps") else ACCURACY)),
        status=status, score=score, steps_run=10, grad_evals=10,
        time_per_step=cost if seconds is None else seconds, wall_time=1.0,
        state_bytes=state, param_bytes=100, created=created,
        env={"device": "cpu: x", "machine": machine})


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
        record("t/steps", "adam", "eval", 0.01, 1000, 1.0, source_hash="old",
               created="2026-01-01T00:00:00+00:00"),
        record("t/accuracy", "adam", "eval", 0.01, 1000, 2.0, source_hash="old",
               created="2026-01-01T00:00:00+00:00"),
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


def test_grid_near_best_share_of_own_configs_near_the_best(runs):
    robustness = leaderboard.grid_near_best(runs, "quick")
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
    assert overall.loc["adam", "grid_near_best"] == pytest.approx(0.75)
    assert (overall["tasks"] == 2).all()


def test_overhead_compares_only_with_sgd_on_the_same_machine():
    from suites import leaderboard

    def run(optimizer, task, machine, seconds):
        return record(task, optimizer, "eval", 0.1, 1000, 1.0, source_hash=optimizer,
                      machine=machine, seconds=seconds).model_copy(
            update={"state_bytes": 8, "param_bytes": 8})

    runs = leaderboard.runs_frame([
        run("sgd", "t/a", "here", 1.0), run("adam", "t/a", "here", 3.0),
        run("sgd", "t/b", "here", 1.0), run("adam", "t/b", "elsewhere", 100.0),
        run("lion", "t/a", "elsewhere", 2.0),
    ])
    table = leaderboard.overhead(runs)
    assert table.loc["adam", "time_vs_sgd"] == pytest.approx(3.0)  # t/b ran on another host
    assert math.isnan(table.loc["lion", "time_vs_sgd"])  # no sgd run shares its machine


# --------------------------------------------------------------------------- step size


def sensitivity_runs(optimizer, base_lr, scores_by_k, seed=0, task="t/steps", lr_key="lr"):
    """Tuning-seed runs of ``base_lr`` × 2^k (phase "sensitivity"; k = 0 is a tuning run)."""
    return [
        record(task, optimizer, "tune" if k == 0 else "sensitivity", base_lr * 2.0**k,
               seed, s, status="ok" if math.isfinite(s) else "diverged", lr_key=lr_key)
        for k, s in scores_by_k.items()
    ]


def test_step_size_window_is_the_widest_run_of_multipliers_near_best_on_every_seed():
    inf = math.inf
    records = [
        *evaluation("t/steps", "adam", 0.01, [2, 2]),
        *evaluation("t/steps", "sgd", 0.1, [4, 4]),
        *evaluation("t/steps", "lion", 0.001, [3, 3]),
        # adam: near best (≤ 2.2) for k = −1 … 2: a window of ×8.
        *sensitivity_runs("adam", 0.01, {-3: 9, -2: 3, -1: 2.1, 0: 2.0, 1: 2.0, 2: 2.15, 3: inf}),
        # sgd: only the tuned step size; k = 1 is better on seed 0 but seed 1 failed there.
        *sensitivity_runs("sgd", 0.1, {-3: 30, -2: 16, -1: 8, 0: 4, 1: 3, 2: inf, 3: inf}),
        *sensitivity_runs("sgd", 0.1, {-3: 30, -2: 16, -1: 8, 0: 4, 1: inf, 2: inf, 3: inf},
                          seed=1),
        # lion: k = 3 was never run (an older sweep): no window.
        *sensitivity_runs("lion", 0.001, {k: 3.0 for k in range(-3, 3)}),
    ]
    runs = leaderboard.runs_frame(records)
    points = leaderboard.sensitivity_points(runs, "quick")
    adam = points[points.optimizer == "adam"].set_index("exponent")
    assert adam["multiplier"].tolist() == [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert adam["near_best"].tolist() == [False, False, True, True, True, True, False]
    sgd = points[points.optimizer == "sgd"].set_index("exponent")
    assert not sgd.loc[1, "succeeded"] and sgd.loc[1, "seeds"] == 2
    windows = leaderboard.step_size_windows(points).set_index("optimizer")
    assert windows.loc["adam", "window"] == 8.0 and windows.loc["adam", "found"]
    assert windows.loc["sgd", "window"] == 1.0
    assert math.isnan(windows.loc["lion", "window"])
    overall = leaderboard.overall_table(runs, "quick").set_index("optimizer")
    assert overall.loc["adam", "step_window"] == 8.0
    assert overall.loc["sgd", "step_window"] == 1.0
    assert math.isnan(overall.loc["lion", "step_window"])  # shown as "n/a"


def test_an_optimizer_without_a_step_size_has_no_window(runs):
    assert leaderboard.sensitivity_points(runs, "quick").empty  # no lr_key recorded
    assert leaderboard.overall_table(runs, "quick")["step_window"].isna().all()


def test_step_size_variants_keep_the_tuned_config_and_scale_exactly():
    from suites.api import step_size_variants

    variants = dict(step_size_variants({"lr": 0.1, "beta": 0.9}, "lr"))
    assert list(variants) == [-3, -2, -1, 0, 1, 2, 3]
    assert variants[0] == {"lr": 0.1, "beta": 0.9}
    assert variants[1] == {"lr": 0.2, "beta": 0.9} and variants[-3]["lr"] == 0.1 / 8
    assert step_size_variants({"lr": 0.1}, None) == []


# --------------------------------------------------------------------------- uncertainty


def test_bootstrap_interval_is_deterministic_and_contains_the_score(runs):
    # A third task (a copy of t/steps) so that the interval is shown.
    third = runs[runs["task"] == "t/steps"].assign(task="t/more-steps")
    runs = pd.concat([runs, third], ignore_index=True)
    first = leaderboard.profile_interval(runs, "quick", resamples=200)
    again = leaderboard.profile_interval(runs, "quick", resamples=200)
    pd.testing.assert_frame_equal(first, again)
    score = leaderboard.overall_table(runs, "quick").set_index("optimizer")["profile_score"]
    for name, row in first.iterrows():
        assert row["score_low"] <= score[name] + 1e-12 <= row["score_high"] + 2e-12
    # adam is best on every task and every seed: no resample moves it.
    assert first.loc["adam"].tolist() == [1.0, 1.0]
    # lion's accuracy seeds are 1 and a failure: resamples give it 0 or a full task.
    assert first.loc["lion", "score_low"] < first.loc["lion", "score_high"]


def test_fewer_than_three_tasks_show_no_interval(runs):
    assert runs["task"].nunique() == 2
    interval = leaderboard.profile_interval(runs, "quick")
    assert interval["score_low"].isna().all() and interval["score_high"].isna().all()
    from suites.console import overall_for_show

    shown = overall_for_show(leaderboard.overall_table(runs, "quick"))
    assert not shown["score"].str.contains("±").any()


def test_paired_differences_tell_apart_what_overlapping_intervals_cannot():
    # Task draws move every optimizer alike (base); a is 0.02 above b on every resample,
    # c differs from b by symmetric noise, d is far below.
    rng = np.random.default_rng(1)
    base = rng.normal(0.5, 0.15, size=1000)
    samples = pd.DataFrame({"a": base + 0.02, "b": base, "c": base + rng.normal(0, 0.05, 1000),
                            "d": base - 0.4})
    interval = leaderboard.profile_interval(None, samples=samples)
    assert interval.loc["a", "score_low"] < interval.loc["b", "score_high"]  # overlap
    outcomes = leaderboard.pairwise_outcomes(samples).set_index(["a", "b"])["outcome"]
    assert outcomes["a", "b"] == "beats" and outcomes["b", "a"] == "loses"
    assert outcomes["b", "c"] == "tied" and outcomes["c", "b"] == "tied"
    assert outcomes["d", "c"] == "loses"
    ranks = leaderboard.paired_ranks(leaderboard.pairwise_outcomes(samples), samples.columns)
    # a beats b, but a and c are not told apart; b and c are tied; d loses to all.
    assert outcomes["a", "c"] == "tied"
    assert ranks.to_dict() == {"a": "=1", "b": "2", "c": "=1", "d": "4"}
    assert leaderboard.rank_groups(ranks) == 3


def test_a_lone_optimizer_ranks_first():
    overall = leaderboard.overall_table(leaderboard.runs_frame(
        evaluation("t/steps", "adam", 0.1, [2, 2])), "quick")
    assert overall["tied_rank"].tolist() == ["1"]
    assert leaderboard.rank_groups(overall["tied_rank"]) == 1


def test_benjamini_hochberg_controls_the_false_discoveries_over_all_pairs():
    found = leaderboard.benjamini_hochberg(pd.Series([0.03, 0.001, 0.5, 0.02]), 0.05)
    assert found.tolist() == [True, True, False, True]  # 0.03 <= 3/4 * 0.05
    # One pair below 5 % among many is not a discovery at a 5 % false-discovery rate.
    assert not leaderboard.benjamini_hochberg(pd.Series([0.04, 0.5, 0.6, 0.7]), 0.05).any()
    assert leaderboard.benjamini_hochberg(pd.Series([], dtype=float), 0.05).tolist() == []


def test_one_task_ranks_by_its_paired_difference():
    overall = leaderboard.overall_table(leaderboard.runs_frame([
        *evaluation("t/steps", "sgd", 0.1, [4, 4]), *evaluation("t/steps", "adam", 0.1, [2, 2]),
    ]), "quick").set_index("optimizer")
    assert overall["tied_rank"].to_dict() == {"adam": "1", "sgd": "2"}


# --------------------------------------------------------------------------- held-out variants


def held_out(task, optimizer, scores):
    return [record(task, optimizer, "held_out", 0.1, 1000 + i, s) for i, s in enumerate(scores)]


def test_held_out_runs_are_ranked_apart_and_compared_with_the_public_order():
    steps = {"a": 2, "b": 3, "c": 4, "d": 5}
    rows = []
    for t in range(3):
        for name, n in steps.items():
            rows += evaluation(f"t/{t}-steps", name, 0.1, [n, n])
            # On the variants b and c swap: the order generalizes but for one pair.
            swapped = {"b": 4, "c": 3}.get(name, n)
            rows += held_out(f"t/v{t}-steps", name, [swapped, swapped])
    runs = leaderboard.runs_frame(rows)
    public = leaderboard.overall_table(runs, "quick")
    assert set(leaderboard.task_table(runs, "quick")["task"]) == {"t/0-steps", "t/1-steps",
                                                                   "t/2-steps"}
    assert list(public["optimizer"]) == ["a", "b", "c", "d"]  # variants do not count here
    table, tau = leaderboard.variant_table(runs, "quick", resamples=50)
    moves = table.set_index("optimizer")["rank_change"].to_dict()
    assert moves == {"a": 0, "b": -1, "c": 1, "d": 0}
    assert tau["tau"] == pytest.approx(2 / 3)  # 5 of 6 pairs agree: (5 - 1) / 6
    assert tau["tau_low"] <= tau["tau"] <= tau["tau_high"] and tau["variant_tasks"] == 3


def test_show_variants_prints_the_held_out_ranking_and_tau(capsys):
    from suites import console

    rows = [*evaluation("t/0-steps", "a", 0.1, [2, 2]), *evaluation("t/0-steps", "b", 0.1, [3, 3]),
            *held_out("t/v-steps", "a", [3, 3]), *held_out("t/v-steps", "b", [2, 2])]
    assert console.print_variants(leaderboard.runs_frame(rows), "quick") == 0
    out = capsys.readouterr().out
    assert "held-out variants (1 tasks; budget quick)" in out
    assert "Kendall tau between the public and the variant orders: -1.00" in out
    assert "+1" in out and "-1" in out  # b rises, a falls
    assert console.print_variants(leaderboard.runs_frame(rows[:4]), "quick") == 0
    assert "no held-out variant runs" in capsys.readouterr().out


def test_without_held_out_runs_there_is_no_variant_table(runs):
    table, tau = leaderboard.variant_table(runs, "quick")
    assert table.empty and math.isnan(tau["tau"])


@pytest.mark.parametrize(("higher", "chance"), [(False, None), (True, None), (True, 0.25)])
def test_the_vectorized_ratios_are_the_scalar_rule(higher, chance):
    from suites.api import Metric

    metric = Metric("m", higher_is_better=higher, chance=chance)
    rng = np.random.default_rng(3)
    values = np.array([0.0, -1.0, 2.0, 0.5, math.inf, -math.inf, math.nan, 3.0])
    scores = rng.choice(values, size=(200, 5))
    scores[0] = math.nan  # a row without a finite score
    best = metric.best_of_rows(scores)
    for row, row_best in zip(scores, best, strict=True):
        expected = metric.best(row)
        assert (math.isnan(row_best) and math.isnan(expected)) or row_best == expected
    ratios = metric.ratios(scores, best)
    expected = [[metric.ratio(float(s), float(b)) for s in row] for row, b in zip(scores, best,
                                                                                  strict=True)]
    np.testing.assert_array_equal(ratios, np.array(expected))


def baseline_runs(initial_sgd: float) -> list[RunResult]:
    """A loss that must beat its value at the initial parameters (1.0 for adam)."""
    metric = MetricRecord(name="loss", higher_is_better=False, must_beat_initial=True)
    runs = []
    for optimizer, score, initial in (("sgd", 2.0, initial_sgd), ("adam", 0.5, 1.0)):
        for seed in (1000, 1001):
            run = record("t/loss", optimizer, "eval", 0.1, seed, score)
            runs.append(run.model_copy(update={"metric": metric,
                                               "initial_metrics": {"loss": initial}}))
    return runs


def test_a_loss_that_never_beats_its_initial_value_is_a_failure_not_a_score():
    table = leaderboard.task_table(leaderboard.runs_frame(baseline_runs(initial_sgd=1.5)))
    sgd = table.set_index("optimizer").loc["sgd"]
    assert sgd["success_rate"] == 0 and sgd["score_mean"] == math.inf
    assert table.set_index("optimizer").loc["adam", "success_rate"] == 1
    beaten = leaderboard.task_table(leaderboard.runs_frame(baseline_runs(initial_sgd=3.0)))
    assert beaten.set_index("optimizer").loc["sgd", "score_mean"] == 2.0


def test_a_run_whose_metric_disagrees_with_the_registered_task_is_not_ranked(runs):
    from suites.api import Metric
    from suites.selection import registered_metrics

    frame = runs.assign(file=[f"runs/{i}.json" for i in range(len(runs))])
    registered = {"t/steps": Metric("steps", higher_is_better=False),
                  "t/accuracy": Metric("accuracy", higher_is_better=True)}
    kept, problems = registered_metrics(frame, registered)
    assert len(kept) == len(frame) and problems == {}
    flipped = frame.copy()
    flipped.loc[flipped.index[0], "higher_is_better"] = True  # the file claims the opposite
    kept, problems = registered_metrics(flipped, registered)
    assert len(kept) == len(frame) - 1 and list(problems) == [flipped["file"].iloc[0]]
    assert "higher_is_better is True, the registered task" in next(iter(problems.values()))
    unknown = frame.assign(task="elsewhere/task")  # no installed suite registers it
    assert len(registered_metrics(unknown, registered)[0]) == len(frame)


def chance_runs() -> list[RunResult]:
    """An accuracy whose chance level is 0.5 (ceiling 0.55): adam 0.9, sgd 0.6 and lion
    0.52 on two seeds each."""
    metric = MetricRecord(**ACCURACY, chance=0.5, chance_ceiling=0.55)
    return [record("t/accuracy", optimizer, "eval", 0.1, seed, score).model_copy(
                update={"metric": metric})
            for optimizer, score in (("adam", 0.9), ("sgd", 0.6), ("lion", 0.52))
            for seed in (1000, 1001)]


def test_accuracy_enters_the_profile_as_its_lift_above_chance():
    from suites.api import Metric

    assert Metric("a", True, chance=0.5).ratio(0.6, 0.9) == pytest.approx(
        ((0.9 - 0.5) / (1 - 0.5)) / ((0.6 - 0.5) / (1 - 0.5)))  # 4, not 0.9 / 0.6 = 1.5
    runs = leaderboard.runs_frame(chance_runs())
    table = leaderboard.task_table(runs).set_index("optimizer")
    assert table.loc["sgd", "score_mean"] == 0.6  # the table keeps the accuracy
    ratios = leaderboard.performance_ratios(table.reset_index())
    assert ratios.loc["t/accuracy"].to_dict() == pytest.approx(
        {"adam": 1.0, "sgd": 4.0, "lion": math.inf})
    # The bootstrap takes the same lift: with identical seeds every resample is the score.
    samples = leaderboard.profile_samples(runs, tau_max=5.0, resamples=20)
    assert samples["sgd"].to_numpy() == pytest.approx(np.full(20, 0.25))
    assert samples["adam"].to_numpy() == pytest.approx(np.full(20, 1.0))


def test_an_accuracy_within_the_chance_margin_is_a_failure_not_a_score():
    from suites.api import Metric

    metric = Metric("a", True, chance=0.5)
    assert not metric.beats_baseline(0.55, math.nan, chance_ceiling=0.55)
    assert metric.beats_baseline(0.56, math.nan, chance_ceiling=0.55)
    table = leaderboard.task_table(leaderboard.runs_frame(chance_runs())).set_index("optimizer")
    assert table.loc["lion", "success_rate"] == 0 and table.loc["lion", "score_mean"] == -math.inf
    assert table.loc["sgd", "success_rate"] == 1 and table.loc["lion", "rank"] == 3
    # A run that recorded no chance level (a loss, an older file) is judged as before.
    plain = leaderboard.task_table(leaderboard.runs_frame(
        [r.model_copy(update={"metric": MetricRecord(**ACCURACY)}) for r in chance_runs()]))
    assert plain.set_index("optimizer").loc["lion", "success_rate"] == 1


def test_each_table_is_computed_once_per_runs_table(runs, monkeypatch):
    from suites import selection

    calls = []
    inner = leaderboard.task_table.__wrapped__

    @functools.wraps(inner)
    def counted(*args, **kwargs):
        calls.append(args[1:])
        return inner(*args, **kwargs)

    monkeypatch.setattr(leaderboard, "task_table", selection.once_per_runs(counted))
    first = leaderboard.task_table(runs, "quick")
    first.loc[0, "score_mean"] = -123.0  # a caller's change reaches no later caller
    again = leaderboard.task_table(runs, "quick")
    assert len(calls) == 1 and again.loc[0, "score_mean"] != -123.0
    leaderboard.task_table(runs, "quick", "t")  # a suite's rows come from the whole table
    assert len(calls) == 2
    other = runs.copy()  # another runs table (even with equal values) is scored anew
    leaderboard.task_table(other, "quick")
    assert len(calls) == 3
    pd.testing.assert_frame_equal(leaderboard.task_table(other, "quick"), again)
