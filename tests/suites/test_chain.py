"""The chain suite: task set, the chain's loss and gradient, escape accounting, the deep MLP."""

import math

import pytest
import torch

import suites.chain
from suites.api import Progress, Task
from suites.chain.deep_mlp import DeepMLPTask, digits
from suites.chain.neural_chain import ESCAPE_LOSS, chain_loss
from suites.registry import get_task


def test_tasks_cover_depths_and_inits():
    names = [t.name for t in suites.chain.tasks()]
    for depth in (4, 8, 16, 32, 64):
        for init in ("const", "uniform"):
            assert f"chain/depth-{depth}-{init}" in names
    assert "chain/deep-mlp" in names
    for task in suites.chain.tasks():
        assert isinstance(task, Task)
        assert task.suite == "chain"
        assert "§3.2" in task.description
        assert task.budgets.smoke < task.budgets.quick < task.budgets.full


def test_const_chain_gradient_is_exponentially_small():
    problem = get_task("chain/depth-64-const").setup(seed=0, budget="smoke")
    (w,) = problem.param_groups[0]["params"]
    assert w.shape == (64,) and w.dtype == torch.float64
    loss = problem.loss(0)
    loss.backward()
    product = torch.prod(w.detach())
    assert loss.item() == pytest.approx(0.5 * (1 - product.item()) ** 2)
    torch.testing.assert_close(w.grad, -(1 - product) * product / w.detach())
    # The 1 % jitter keeps Prop. 3.2.4's plateau: every entry is within a few % of 0.5^63.
    assert ((w.grad.abs() / 0.5**63).log().abs() < 0.5).all()


def test_const_start_is_a_seeded_asymmetric_jitter_around_one_half():
    task = get_task("chain/depth-16-const")
    w0 = task.initial_weights(seed=0)
    assert torch.equal(w0, task.initial_weights(seed=0))
    assert not torch.equal(w0, task.initial_weights(seed=1))
    assert len(set(w0.tolist())) == 16  # asymmetric: no two weights equal
    relative = w0 / 0.5 - 1
    assert relative.abs().max() < 0.05 and relative.std().item() == pytest.approx(0.01, rel=0.5)


def test_uniform_init_is_seeded_and_bounded():
    task = get_task("chain/depth-16-uniform")
    w0 = task.setup(seed=0, budget="smoke").param_groups[0]["params"][0]
    again = task.setup(seed=0, budget="smoke").param_groups[0]["params"][0]
    other = task.setup(seed=1, budget="smoke").param_groups[0]["params"][0]
    assert torch.equal(w0, again) and not torch.equal(w0, other)
    assert w0.abs().max() <= 0.2


def test_escape_is_counted_in_gradient_evaluations_at_the_escaped_weights():
    task = get_task("chain/depth-4-const")
    problem = task.setup(seed=0, budget="smoke")
    (w,) = problem.param_groups[0]["params"]
    assert not problem.stop(0.5, 0)
    assert problem.evaluate(Progress(step=7, grad_evals=7))["evals_to_escape"] == math.inf
    with torch.no_grad():
        w.fill_(1.0)
    assert problem.stop(0.5, 6)
    # An optimizer that evaluates the gradient three times a step pays for all of them.
    metrics = problem.evaluate(Progress(step=7, grad_evals=21))
    assert metrics["evals_to_escape"] == 21 and metrics["loss"] == 0
    assert task.score(metrics, 7, "ok") == 21


@pytest.mark.parametrize("depth, lr", [(8, 0.03), (16, 0.015), (64, 0.005)])
def test_constant_step_rmsprop_oscillates_about_the_minimum_by_depth_times_step(depth, lr):
    """Why the escape line sits at the plateau: after escaping, RMSprop (β₂ = 0.9, as the
    built-in) settles into a two-step cycle whose residuals |1 − ∏w| add up to about L·η.
    At L·η = 0.24–0.32 the cycle's loss stays above 1e−3, the old line, yet far below the
    escape line."""
    w = get_task(f"chain/depth-{depth}-const").initial_weights(seed=0).requires_grad_()
    optimizer = torch.optim.RMSprop([w], lr=lr, alpha=0.9, eps=1e-30)
    residuals = []
    for _ in range(300):
        optimizer.zero_grad()
        chain_loss(w).backward()
        optimizer.step()
        residuals.append(abs(1 - torch.prod(w.detach()).item()))
    last_two = residuals[-2:]
    assert sum(last_two) == pytest.approx(depth * lr, rel=0.1)
    assert all(0.5 * r**2 > 1e-3 for r in residuals[-20:])
    assert all(0.5 * r**2 < ESCAPE_LOSS / 2 for r in residuals[-20:])


def test_a_run_that_never_escapes_or_fails_scores_infinity():
    task = get_task("chain/depth-4-const")
    assert task.score({"evals_to_escape": math.inf, "loss": 0.5}, 50, "ok") == math.inf
    assert task.score({"evals_to_escape": 3.0}, 3, "diverged") == math.inf
    assert task.score({}, 0, "error") == math.inf


def test_deep_mlp_is_deep_narrow_he_initialized_and_batches_are_fixed():
    task = get_task("chain/deep-mlp")
    assert isinstance(task, DeepMLPTask) and task.depth >= 32 and task.width <= 32
    problem = task.setup(seed=0, budget="smoke")
    params = problem.param_groups[0]["params"]
    weights = params[0::2]
    assert len(weights) == task.depth + 1
    assert all(p.dtype == torch.float32 for p in params)
    hidden = torch.cat([w.detach().flatten() for w in weights[1:-1]])
    assert hidden.var().item() == pytest.approx(2 / task.width, rel=0.1)
    assert problem.loss(3).item() == problem.loss(3).item()
    assert problem.loss(3).item() != problem.loss(4).item()
    metrics = problem.evaluate(Progress(step=0, grad_evals=0))
    assert set(metrics) == {"train_loss", "train_accuracy", "test_accuracy",
                            "steps_to_target_accuracy"}


def test_digits_split_is_fixed_and_disjoint():
    (x_tr, _), (x_te, y_te) = digits("train"), digits("test")
    assert len(x_tr) + len(x_te) == 1797
    assert x_tr.max() <= 1 and set(y_te.tolist()) == set(range(10))
