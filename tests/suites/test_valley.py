"""The valley suite: the widening valley's start, trace, exit and tolerance; Eq. 172."""

import math

import pytest
import torch

import suites.valley
from suites.api import Task
from suites.registry import get_task
from suites.valley.linear_net import effective_loss, sparse_regression


def test_tasks():
    tasks = suites.valley.tasks()
    assert [t.name for t in tasks] == ["valley/widening", "valley/linear-net-w30",
                                       "valley/linear-net-w300", "valley/linear-net-w3000"]
    for task in tasks:
        assert isinstance(task, Task) and task.suite == "valley"
        assert task.budgets.smoke < task.budgets.quick < task.budgets.full


def test_widening_valley_starts_at_a_zero_gradient_minimum_of_trace_d():
    task = get_task("valley/widening")
    problem = task.setup(seed=0, budget="smoke")
    (x,) = problem.param_groups[0]["params"]
    assert x.shape == (task.dim + 1,) and x[-1] == 0
    loss = problem.loss(0)
    loss.backward()
    assert loss.item() == 0 and x.grad.eq(0).all()
    metrics = problem.evaluate()
    assert metrics["u_sq_norm"] == pytest.approx(task.start_sq_norm)
    assert metrics["hessian_trace"] == pytest.approx(task.start_sq_norm)


def test_hessian_trace_matches_autograd():
    task = get_task("valley/widening")
    problem = task.setup(seed=1, budget="smoke")
    (x,) = problem.param_groups[0]["params"]
    with torch.no_grad():
        x[-1] = 0.3
    hessian = torch.autograd.functional.hessian(lambda y: 0.5 * y[-1] ** 2 * y[:-1].dot(y[:-1]),
                                                x.detach())
    assert problem.evaluate()["hessian_trace"] == pytest.approx(hessian.trace().item())


@pytest.mark.parametrize("scale, stops", [(1.0, False), (0.49, True), (2.01, True)])
def test_run_stops_when_u_leaves_the_theorem_domain(scale, stops):
    problem = get_task("valley/widening").setup(seed=0, budget="smoke")
    (x,) = problem.param_groups[0]["params"]
    with torch.no_grad():
        x[:-1] *= scale  # ‖u‖² = 100 scale²: the domain is (25, 400)
    assert problem.stop(0.0, 0) is stops


def test_a_run_off_the_valley_floor_fails():
    task = get_task("valley/widening")
    assert task.loss_tolerance == pytest.approx(6.25)
    assert task.score({"hessian_trace": 30.0, "loss": 1.0}, 10, "ok") == 30.0
    assert task.score({"hessian_trace": 30.0, "loss": 7.0}, 10, "ok") == math.inf
    assert task.score({"hessian_trace": 30.0, "loss": 1.0}, 10, "diverged") == math.inf


def test_effective_loss_is_the_expected_perturbed_loss_minus_the_sigma4_term():
    # Eq. 175: E f(W + σE) = f_σ^eff + (σ⁴/2n) d₁ d₂ ‖X‖²_F for the two-layer linear net.
    task = get_task("valley/linear-net-w300")
    problem = task.setup(seed=0, budget="smoke")
    w1, w2 = (p.detach() for p in problem.param_groups[0]["params"])
    x, y = sparse_regression(task.n, task.d0)
    sigma, samples = 0.1, 4000
    gen = torch.Generator().manual_seed(0)
    e1 = torch.randn(samples, *w1.shape, generator=gen, dtype=torch.float64)
    e2 = torch.randn(samples, *w2.shape, generator=gen, dtype=torch.float64)
    pred = (w2 + sigma * e2) @ (w1 + sigma * e1) @ x.T
    perturbed = (y.T - pred).pow(2).sum((1, 2)) / (2 * task.n)
    extra = sigma**4 * task.width * 1 * x.pow(2).sum() / (2 * task.n)
    expected = effective_loss(w1, w2, x, y, sigma) + extra
    assert perturbed.mean().item() == pytest.approx(expected.item(), rel=0.02)


def test_linear_net_init_scale_and_metric():
    task = get_task("valley/linear-net-w300")
    problem = task.setup(seed=0, budget="smoke")
    w1, w2 = problem.param_groups[0]["params"]
    assert w1.shape == (task.width, task.d0) and w2.shape == (1, task.width)
    assert w1.detach().var().item() == pytest.approx(1 / (task.width * task.d0), rel=0.1)
    metrics = problem.evaluate()
    assert metrics["effective_loss"] > metrics["loss"] > 0


def test_effective_loss_minimum_matches_a_numerical_minimization():
    from suites.valley.linear_net import effective_loss_minimum

    x, y = sparse_regression(40, 10)
    gen = torch.Generator().manual_seed(0)
    w1 = (0.1 * torch.randn(3, 10, generator=gen, dtype=torch.float64)).requires_grad_()
    w2 = (0.1 * torch.randn(1, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    lbfgs = torch.optim.LBFGS([w1, w2], max_iter=2000, tolerance_grad=1e-12,
                              tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad()
        loss = effective_loss(w1, w2, x, y, 0.1)
        loss.backward()
        return loss

    lbfgs.step(closure)
    numerical = effective_loss(w1, w2, x, y, 0.1).item()
    assert effective_loss_minimum(x, y, 0.1) == pytest.approx(numerical, rel=1e-6)
    assert effective_loss_minimum(x, y, 0.0) == pytest.approx(0.0, abs=1e-12)


def test_width_tasks_sit_on_the_width_axis():
    assert [suites.valley.task_axis(f"valley/linear-net-w{w}") for w in (30, 300, 3000)] == [
        ("width", 30, ""), ("width", 300, ""), ("width", 3000, "")]
    assert suites.valley.task_axis("valley/widening") is None
    assert get_task("valley/linear-net-w3000").width == 3000
