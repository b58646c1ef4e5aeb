"""Thesis §3.2 on the constant-init chains, through the real tuning protocol at smoke.

``suites.tuning.run_sweep`` tunes RMSprop and gradient descent on their own grids (one
tuning seed), then runs each one's chosen configuration on the evaluation seed, exactly
as ``lsb run`` does. Prop. 3.2.4 and Fig. 21: RMSprop's escape takes about as many steps
at depth 64 as at depth 4; gradient descent's grows exponentially with depth until it
does not escape within the budget at all. The fast test checks what the protocol relies
on: one tuning seed predicts the evaluation seeds, for every configuration of the grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import suites.chain
from suites.executors import LocalExecutor
from suites.executors.local import execute
from suites.registry import builtin_optimizer_paths
from suites.results import ResultStore
from suites.submission import load_submission
from suites.tuning import run_sweep

DEPTHS = (4, 8, 16, 32, 64)
#: RMSprop: the slowest depth takes at most this many times the fastest depth's steps.
RMSPROP_SPREAD = 4.0
#: Gradient descent: each doubling of the depth multiplies its steps at least by this.
GD_GROWTH_PER_DOUBLING = 4.0


def submission(name: str):
    return load_submission(builtin_optimizer_paths()[name])


def const_chain(depth: int):
    return next(t for t in suites.chain.tasks() if t.name == f"chain/depth-{depth}-const")


@pytest.mark.parametrize("depth", [8, 64])
def test_the_tuning_seed_predicts_the_evaluation_seeds_for_every_rmsprop_config(depth):
    """The depth-8 failure the line near the minimum caused: at η = 0.03 RMSprop passed it
    at step 6 on the tuning seed and never on 9 of 20 evaluation seeds. Now each config
    escapes on every seed or on none, within a few steps of the tuning seed's count."""
    task, rmsprop = const_chain(depth), submission("rmsprop")
    for config in rmsprop.configs():
        steps = [execute(task, rmsprop, config, seed, "smoke").score for seed in (0, 1000, 1001)]
        if math.isfinite(steps[0]):
            assert all(math.isfinite(s) and abs(s - steps[0]) <= 0.25 * steps[0] + 1
                       for s in steps), (config, steps)
        else:
            assert not any(map(math.isfinite, steps)), (config, steps)


@pytest.fixture(scope="module")
def evaluation_steps(tmp_path_factory) -> dict[str, dict[int, float]]:
    """Mean evaluation-seed steps to escape of the tuned configuration, by optimizer and
    depth (``inf`` when an evaluation run did not escape)."""
    tasks = [const_chain(depth) for depth in DEPTHS]
    submissions = [submission(name) for name in ("rmsprop", "sgd")]
    store = ResultStore(tmp_path_factory.mktemp("results"))
    with LocalExecutor(in_process=True) as executor:
        report = run_sweep(tasks, submissions, "smoke", store=store, executor=executor)
    steps: dict[str, dict[int, float]] = {}
    for sub in submissions:
        for depth, task in zip(DEPTHS, tasks, strict=True):
            runs = [r for r in report.results
                    if r.spec.phase == "eval" and r.spec.task == task.name
                    and r.spec.optimizer.name == sub.name]
            assert runs and all(r.status in ("ok", "diverged") for r in runs), runs
            steps.setdefault(sub.name, {})[depth] = float(np.mean([r.score for r in runs]))
    print(f"evaluation steps to escape at smoke, by depth: {steps}")
    return steps


@pytest.mark.slow
def test_rmsprop_escapes_every_depth_in_about_the_same_number_of_steps(evaluation_steps):
    rmsprop = evaluation_steps["rmsprop"]
    assert all(math.isfinite(s) for s in rmsprop.values()), rmsprop
    assert max(rmsprop.values()) <= RMSPROP_SPREAD * min(rmsprop.values()), rmsprop


@pytest.mark.slow
def test_gradient_descent_steps_grow_exponentially_with_depth_until_it_fails(evaluation_steps):
    gd = evaluation_steps["sgd"]
    escaped = [d for d in DEPTHS if math.isfinite(gd[d])]
    # It escapes the shallowest chains, then never again: the escaped depths are a prefix.
    assert escaped == list(DEPTHS[: len(escaped)]) and len(escaped) >= 2, gd
    assert not math.isfinite(gd[DEPTHS[-1]]), gd
    for shallow, deep in zip(escaped, escaped[1:], strict=False):
        assert gd[deep] >= GD_GROWTH_PER_DOUBLING * gd[shallow], gd
