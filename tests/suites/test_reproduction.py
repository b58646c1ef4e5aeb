"""The thesis' results, reproduced through the real training loop (``suites.training``).

- §3.2, Prop. 3.2.4: gradient descent's escape time from the chain's plateau grows
  exponentially with depth, RMSprop's and Adam's barely grows (from the seeded, jittered
  constant start).
- §6.3.2, Thm 6.3.2: on the widening valley PGD leaves through the sharp side, Anti-PGD
  through the flat side.
"""

import dataclasses
import math
from pathlib import Path

import pytest

from suites.api import Budget
from suites.executors import execute
from suites.registry import get_task
from suites.submission import load_submission

OPTIMIZERS_DIR = Path(__file__).resolve().parents[2] / "suites" / "optimizers"
GD_STEPS_CAP = 20_000


def submission(name):
    return load_submission(OPTIMIZERS_DIR / f"{name}.py")


def with_steps(task, steps):
    return dataclasses.replace(task, budgets=Budget(steps, steps, steps))


def best_escape(task_name, optimizer, cap):
    """Fewest steps to escape over the optimizer's grid (seed 0), or ``inf``.

    Each config runs with at most the best count so far: a config that cannot beat it
    does not change the minimum, so the steps it would take beyond are not needed.
    Larger step sizes go first since on the plateau a step's progress scales with it.
    """
    sub = submission(optimizer)
    best = math.inf
    for config in sorted(sub.configs(), key=lambda c: -c[sub.lr_key]):
        task = with_steps(get_task(task_name), int(min(best, cap)))
        result = execute(task, sub, config, seed=0, budget="quick")
        assert result.status in ("ok", "diverged"), result.error
        if result.status == "ok":
            best = min(best, result.metrics["evals_to_escape"])
    return best


def test_gradient_descent_escape_grows_more_than_fourfold_from_depth_4_to_8():
    """The fast sibling of the next test: the first doubling of the depth."""
    escape = {depth: best_escape(f"chain/depth-{depth}-const", "sgd", 200) for depth in (4, 8)}
    assert 4 * escape[4] <= escape[8] < math.inf


@pytest.fixture(scope="module")
def gd_escape():
    return {depth: best_escape(f"chain/depth-{depth}-const", "sgd", GD_STEPS_CAP)
            for depth in (4, 8, 16)}


@pytest.mark.slow
def test_gradient_descent_escape_time_explodes_with_depth(gd_escape):
    print(f"GD escape steps by depth (best lr of the sgd grid): {gd_escape}")
    assert gd_escape[4] < gd_escape[8] < gd_escape[16] < math.inf
    assert gd_escape[16] >= 10 * gd_escape[8]


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_adaptive_escape_time_is_nearly_flat_in_depth(optimizer):
    """Each doubling of the depth at most triples the steps (GD's: ×100 from 8 to 16), and
    depth 64 takes under a third of the quick budget. From the jittered start the steps
    grow about linearly in depth (rmsprop 6, 13, 22, 52 at depth 8 … 64); from exactly 0.5
    depth 64 took fewer steps than depth 32, a grid step landing on the optimum."""
    depths = (8, 16, 32, 64)
    escape = {d: best_escape(f"chain/depth-{d}-const", optimizer, 500) for d in depths}
    print(f"{optimizer} escape steps by depth: {escape}")
    assert escape[64] <= 100
    for shallow, deep in zip(depths, depths[1:], strict=False):
        assert escape[deep] <= 3 * escape[shallow]


@pytest.mark.parametrize("optimizer, side", [("pgd", "sharp"), ("anti_pgd", "flat")])
def test_noise_injection_exits_the_widening_valley_as_thm_6_3_2_says(optimizer, side):
    task = get_task("valley/widening")
    d, alpha, D = task.dim, task.alpha, task.start_sq_norm
    thesis_setting = {"lr": alpha / (2 * D), "sigma": math.sqrt(alpha * D / (2 * d))}
    for seed in (0, 1):
        result = execute(task, submission(optimizer), thesis_setting, seed, "full")
        assert result.status == "ok", result.error
        u_sq = result.metrics["u_sq_norm"]
        print(f"{optimizer} seed {seed}: ‖u‖² = {u_sq:.1f} after {result.steps_run} steps")
        if side == "sharp":
            assert u_sq >= D / alpha
        else:
            assert u_sq <= alpha * D


@pytest.mark.slow
def test_leaderboard_ranks_adaptive_over_gd_and_anti_pgd_over_pgd(tmp_path):
    from suites import leaderboard
    from suites.executors import LocalExecutor
    from suites.results import ResultStore
    from suites.tuning import run_sweep

    tasks = [get_task("chain/depth-16-const"), get_task("valley/widening")]
    subs = [submission(n) for n in ("sgd", "rmsprop", "pgd", "anti_pgd")]
    with LocalExecutor(jobs=1) as executor:
        run_sweep(tasks, subs, "smoke", store=ResultStore(tmp_path), executor=executor,
                  seeds=(1, 1))
    table = leaderboard.task_table(leaderboard.load_runs(tmp_path), "smoke")
    rank = table.set_index(["task", "optimizer"])["rank"]
    print(table[["task", "optimizer", "config_key", "score_mean", "rank"]].to_string())
    assert rank["chain/depth-16-const", "rmsprop"] < rank["chain/depth-16-const", "sgd"]
    assert rank["valley/widening", "anti_pgd"] < rank["valley/widening", "pgd"]


def test_grasp_gap_to_the_effective_minimum_grows_with_width_lgrasp_does_not():
    """§6.4, Fig. 58–59: at the same η and σ, GRASP's distance to ``min f_σ^eff`` (the same
    at every width) grows from width 30 to 3000; L-GRASP's stays put."""
    from suites.valley.linear_net import effective_loss_minimum, sparse_regression

    config = {"lr": 0.01, "sigma": 0.1}
    gap = {}
    for width in (30, 3000):
        task = with_steps(get_task(f"valley/linear-net-w{width}"), 300)
        floor = effective_loss_minimum(*sparse_regression(task.n, task.d0), config["sigma"])
        for optimizer in ("grasp", "lgrasp"):
            result = execute(task, submission(optimizer), config, seed=0, budget="quick")
            assert result.status == "ok", result.error
            gap[optimizer, width] = result.metrics["effective_loss"] - floor
    print(f"gap to min f_σ^eff by (optimizer, width): {gap}")
    assert all(value > 0 for value in gap.values())
    assert gap["grasp", 3000] > 2 * gap["grasp", 30]
    assert gap["lgrasp", 3000] < 1.5 * gap["lgrasp", 30]
    assert gap["grasp", 3000] > 2 * gap["lgrasp", 3000]
