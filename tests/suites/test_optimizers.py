"""The built-in optimizers: each update rule against a step computed by hand, and each
submission file loads and builds on a tiny problem."""

import math
from pathlib import Path

import pytest
import torch

from suites.optimizers._noise import GRASP, LGRASP, PGD, AntiPGD
from suites.optimizers._scalar_step import AdaGradNorm, DecSPS, SPSMax
from suites.submission import load_submission
from suites.training import optimizer_param_groups

OPTIMIZERS_DIR = Path(__file__).resolve().parents[2] / "suites" / "optimizers"
BUILT_INS = sorted(p.stem for p in OPTIMIZERS_DIR.glob("[a-z]*.py"))
A = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)  # curvatures of the quadratic


def quadratic(x):
    """``f(x) = ½ Σ a_i x_i²``, ``∇f = a ⊙ x``."""
    return 0.5 * (A * x * x).sum()


def point(values=(1.0, -2.0, 0.5)):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def closure_for(opt, params, loss_fn, seen=None):
    def closure():
        opt.zero_grad()
        if seen is not None:
            seen.append([p.detach().clone() for p in params])
        loss = loss_fn(*params)
        loss.backward()
        return loss

    return closure


def take_steps(opt, params, loss_fn, steps=1, seen=None):
    for _ in range(steps):
        opt.step(closure_for(opt, params, loss_fn, seen))


def load(name):
    return load_submission(OPTIMIZERS_DIR / f"{name}.py")


def build(name, params, **hparams):
    sub = load(name)
    config = {**sub.configs()[0], **hparams}
    return sub.build([{"params": params}], **config)


# --------------------------------------------------------------------------- submissions


def test_every_thesis_optimizer_is_a_built_in():
    assert BUILT_INS == sorted(
        ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "ngn", "sps", "decsps",
         "adagrad_norm", "pgd", "anti_pgd", "grasp", "lgrasp"]
    )


@pytest.mark.parametrize("name", BUILT_INS)
def test_submission_loads_and_every_config_steps(name):
    sub = load(name)
    assert sub.name == name
    assert sub.description.strip()
    assert 1 <= len(sub.configs()) <= 8
    assert sub.lr_key is None or all(sub.lr_key in c for c in sub.configs())
    for config in sub.configs():
        x = point()
        opt = sub.build([{"params": [x]}], **config)
        assert isinstance(opt, torch.optim.Optimizer)
        take_steps(opt, [x], quadratic)
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", [n for n in BUILT_INS if load(n).lr_key is not None])
def test_per_group_step_size_reaches_the_optimizer(name):
    sub = load(name)
    config = sub.configs()[0]
    x, y = point(), point()
    groups = optimizer_param_groups(
        [{"params": [x]}, {"params": [y], "lr_scale": 0.25}], config, sub.lr_key
    )
    opt = sub.build(groups, **config)
    assert opt.param_groups[0][sub.lr_key] == config[sub.lr_key]
    assert opt.param_groups[1][sub.lr_key] == pytest.approx(0.25 * config[sub.lr_key])


@pytest.mark.parametrize("name", ["rmsprop", "adam", "adamw"])
def test_adaptive_grids_hold_an_eps_below_a_deep_chains_gradient(name):
    # From w_i = 0.5 at depth 64 every gradient entry is 0.5^63 (1 − 0.5^64) ≈ 1e−19.
    assert min(c["eps"] for c in load(name).configs()) < 1e-3 * 0.5**63


def test_thesis_valley_setting_is_in_the_noise_grids():
    eta, sigma = 0.25 / (2 * 100), math.sqrt(0.25 * 100 / (2 * 100))
    for name in ["pgd", "anti_pgd", "grasp", "lgrasp"]:
        configs = load(name).configs()
        assert any(
            c["lr"] == pytest.approx(eta) and c["sigma"] == pytest.approx(sigma)
            for c in configs
        ), name


# --------------------------------------------------------------------------- update rules


def test_sgd():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("sgd", [x], lr=0.1), [x], quadratic)
    torch.testing.assert_close(x.detach(), x0 - 0.1 * A * x0)


def test_heavy_ball_two_steps():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("momentum", [x], lr=0.1), [x], quadratic, steps=2)
    g0 = A * x0
    x1 = x0 - 0.1 * g0
    m1 = 0.9 * g0 + A * x1
    torch.testing.assert_close(x.detach(), x1 - 0.1 * m1)


def test_nesterov_first_step():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("nesterov", [x], lr=0.1), [x], quadratic)
    g0 = A * x0  # m₁ = g₀, update g₀ + β m₁
    torch.testing.assert_close(x.detach(), x0 - 0.1 * (1 + 0.9) * g0)


def test_rmsprop_two_steps():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("rmsprop", [x], lr=0.01, eps=1e-8), [x], quadratic, steps=2)
    g0 = A * x0
    v1 = 0.1 * g0**2
    x1 = x0 - 0.01 * g0 / (v1.sqrt() + 1e-8)
    g1 = A * x1
    v2 = 0.9 * v1 + 0.1 * g1**2
    torch.testing.assert_close(x.detach(), x1 - 0.01 * g1 / (v2.sqrt() + 1e-8))


def test_rmsprop_tiny_eps_keeps_a_tiny_gradient_normalized():
    # g = 1e−19: with ε = 1e−30 the first step is still η g/|g|/√(1−β₂).
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = build("rmsprop", [x], lr=0.01, eps=1e-30)
    take_steps(opt, [x], lambda x: 1e-19 * x.sum())
    assert x.item() == pytest.approx(1.0 - 0.01 / math.sqrt(0.1), rel=1e-9)


def test_adam_first_step_is_sign_descent():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("adam", [x], lr=0.01, eps=1e-30), [x], quadratic)
    torch.testing.assert_close(x.detach(), x0 - 0.01 * torch.sign(A * x0))


def test_adamw_decays_before_the_adam_step():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("adamw", [x], lr=0.01, eps=1e-30), [x], quadratic)
    torch.testing.assert_close(x.detach(), x0 * (1 - 0.01 * 0.01) - 0.01 * torch.sign(A * x0))


def test_ngn_step_size():
    x = point()
    x0 = x.detach().clone()
    take_steps(build("ngn", [x], sigma=0.3), [x], quadratic)
    g0 = A * x0
    f0 = 0.5 * (A * x0 * x0).sum()
    gamma = 0.3 / (1 + 0.3 * g0.dot(g0) / (2 * f0))
    torch.testing.assert_close(x.detach(), x0 - gamma * g0)


@pytest.mark.parametrize("gamma_b", [0.05, 10.0])
def test_sps_max_polyak_step_and_its_cap(gamma_b):
    x = point()
    x0 = x.detach().clone()
    take_steps(SPSMax([x], c=0.5, gamma_b=gamma_b), [x], quadratic)
    g0 = A * x0
    f0 = 0.5 * (A * x0 * x0).sum()
    gamma = min(f0 / (0.5 * g0.dot(g0)), gamma_b)
    assert (gamma == gamma_b) == (gamma_b == 0.05)  # both branches are exercised
    torch.testing.assert_close(x.detach(), x0 - gamma * g0)


def test_decsps_two_steps():
    x = point()
    x0 = x.detach().clone()
    c0, gamma_b = 2.0, 0.2
    take_steps(DecSPS([x], c0=c0, gamma_b=gamma_b), [x], quadratic, steps=2)
    g0 = A * x0
    gamma0 = min(quadratic(x0) / g0.dot(g0), c0 * gamma_b) / c0
    x1 = x0 - gamma0 * g0
    g1 = A * x1
    c1 = c0 * math.sqrt(2)
    gamma1 = min(quadratic(x1) / g1.dot(g1), c0 * gamma0) / c1
    torch.testing.assert_close(x.detach(), x1 - gamma1 * g1)


def test_polyak_steps_stay_put_at_a_zero_gradient():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for opt in [SPSMax([x]), DecSPS([x])]:
        take_steps(opt, [x], quadratic, steps=3)
        assert x.detach().eq(0).all()


def test_polyak_steps_reject_a_negative_loss():
    x = point()
    with pytest.raises(ValueError, match="non-negative"):
        take_steps(SPSMax([x]), [x], lambda x: -quadratic(x))


def test_adagrad_norm_accumulates_one_scalar_over_groups():
    x, y = point(), point((0.3, 0.2, -1.0))
    x0, y0 = x.detach().clone(), y.detach().clone()
    opt = AdaGradNorm([{"params": [x]}, {"params": [y], "lr": 0.05}], lr=0.1, b0=0.1)
    take_steps(opt, [x, y], lambda x, y: quadratic(x) + quadratic(y), steps=2)
    gx, gy = A * x0, A * y0
    b1 = math.sqrt(0.01 + gx.dot(gx) + gy.dot(gy))
    x1, y1 = x0 - 0.1 / b1 * gx, y0 - 0.05 / b1 * gy
    gx, gy = A * x1, A * y1
    b2 = math.sqrt(b1**2 + gx.dot(gx) + gy.dot(gy))
    torch.testing.assert_close(x.detach(), x1 - 0.1 / b2 * gx)
    torch.testing.assert_close(y.detach(), y1 - 0.05 / b2 * gy)


# --------------------------------------------------------------------------- noise


def test_pgd_adds_plus_minus_sigma_to_the_gradient_step():
    x = point()
    x0 = x.detach().clone()
    take_steps(PGD([x], lr=0.1, sigma=0.3, noise="bernoulli"), [x], quadratic)
    noise = x.detach() - (x0 - 0.1 * A * x0)
    torch.testing.assert_close(noise.abs(), torch.full_like(noise, 0.3))


def test_gaussian_noise_has_variance_sigma_squared():
    x = torch.zeros(20_000, dtype=torch.float64, requires_grad=True)
    take_steps(PGD([x], lr=0.1, sigma=0.3), [x], lambda x: 0 * x.sum())
    assert x.detach().mean().abs() < 0.01
    assert x.detach().std().item() == pytest.approx(0.3, rel=0.03)


def test_anti_pgd_is_gradient_descent_at_perturbed_points_in_w():
    # Eq. 149: with w_k = x_k − ξ_k, w_{k+1} = w_k − η ∇f(w_k + ξ_k) = w_k − η ∇f(x_k).
    x = point()
    opt = AntiPGD([x], lr=0.1, sigma=0.3, noise="bernoulli")
    for _ in range(3):
        x_k = x.detach().clone()
        xi_k = opt.state[x].get("xi")
        take_steps(opt, [x], quadratic)
        if xi_k is None:  # ξ₀ is drawn during the first step
            continue
        w_next = x.detach() - opt.state[x]["xi"]
        torch.testing.assert_close(w_next, x_k - xi_k - 0.1 * A * x_k)
        assert opt.state[x]["xi"].abs().eq(0.3).all()


def test_grasp_steps_from_the_unperturbed_point_with_the_perturbed_gradient():
    x = point()
    x0 = x.detach().clone()
    seen = []
    take_steps(GRASP([x], lr=0.1, sigma=0.3), [x], quadratic, seen=seen)
    (perturbed,) = seen[0]
    assert not torch.equal(perturbed, x0)
    torch.testing.assert_close(x.detach(), x0 - 0.1 * A * perturbed)


def test_lgrasp_perturbs_one_tensor_by_sigma_sqrt_p():
    tensors = [torch.zeros(4000, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    loss = lambda *ps: sum(quadratic(p[:3]) for p in ps)
    opt = LGRASP([{"params": tensors[:2]}, {"params": tensors[2:]}], lr=0.1, sigma=0.3)
    picked = set()
    for _ in range(12):
        before = [t.detach().clone() for t in tensors]
        seen = []
        take_steps(opt, tensors, loss, seen=seen)
        moved = [i for i, (s, b) in enumerate(zip(seen[0], before, strict=True))
                 if not torch.equal(s, b)]
        assert len(moved) == 1
        i = moved[0]
        picked.add(i)
        assert (seen[0][i] - before[i]).std().item() == pytest.approx(0.3 * 2, rel=0.05)
        for t, b, s in zip(tensors, before, seen[0], strict=True):
            grad = torch.zeros_like(b)
            grad[:3] = A * s[:3]
            torch.testing.assert_close(t.detach(), b - 0.1 * grad)
    assert len(picked) > 1


@pytest.mark.parametrize("cls", [PGD, AntiPGD, GRASP, LGRASP])
def test_noise_is_reproducible_from_the_global_seed(cls):
    def run():
        torch.manual_seed(123)
        x = point()
        take_steps(cls([x], lr=0.1, sigma=0.3), [x], quadratic, steps=3)
        return x.detach()

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)
