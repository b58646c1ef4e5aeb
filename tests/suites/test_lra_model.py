"""The deep LRU of ``suites.lra.model`` against the formulas of thesis §5.3."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from suites.lra.model import (
    LRU,
    LRUClassifier,
    LRUConfig,
    LRURetrieval,
    lru_param_groups,
    ring_init,
)


def naive_lru(layer: LRU, u: torch.Tensor) -> torch.Tensor:
    """The LRU read off its equations, one time step at a time, in complex128."""
    with torch.no_grad():
        nu, theta = torch.exp(layer.nu_log.double()), torch.exp(layer.theta_log.double())
        lam = torch.exp(-nu + 1j * theta)
        gamma = torch.exp(layer.gamma_log.double())
        B = layer.B_re.double() + 1j * layer.B_im.double()
        C = layer.C_re.double() + 1j * layer.C_im.double()
        u = u.double()
        batch, L, _ = u.shape
        y = u * layer.D.double()
        directions = [range(L)] + ([range(L - 1, -1, -1)] if layer.bidirectional else [])
        for d, order in enumerate(directions):
            x = torch.zeros(batch, layer.d_state, dtype=torch.complex128)
            for k in order:
                x = lam * x + gamma * (u[:, k].to(torch.complex128) @ B.T)
                y[:, k] += (x @ C[d].T).real
        return y


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lru_matches_its_equations(bidirectional):
    layer = LRU(6, 5, r_min=0.5, r_max=0.99, bidirectional=bidirectional)
    u = torch.randn(3, 17, 6)
    got = layer(u).double()
    torch.testing.assert_close(got, naive_lru(layer, u), rtol=1e-4, atol=1e-4)


def test_eigenvalues_stay_inside_the_unit_disk_for_any_parameters():
    layer = LRU(4, 64)
    with torch.no_grad():
        layer.nu_log.normal_(0, 5)
        layer.theta_log.normal_(0, 5)
    assert bool((layer.eigenvalues().abs() < 1).all())


def test_ring_init_is_uniform_on_the_ring_area():
    r_min, r_max, max_phase = 0.4, 0.95, math.pi / 10
    nu_log, theta_log = ring_init(20_000, r_min, r_max, max_phase)
    radius = torch.exp(-torch.exp(nu_log.double())).numpy()
    phase = torch.exp(theta_log.double()).numpy()
    assert radius.min() >= r_min - 1e-6 and radius.max() <= r_max + 1e-6
    # Uniform on the area: the CDF of |λ| is (r² − r_min²)/(r_max² − r_min²).
    area_cdf = lambda r: (r**2 - r_min**2) / (r_max**2 - r_min**2)
    assert stats.kstest(radius, area_cdf).pvalue > 1e-3
    # ... which is not uniform in the radius: the test can tell the two apart.
    radius_cdf = lambda r: (r - r_min) / (r_max - r_min)
    assert stats.kstest(radius, radius_cdf).pvalue < 1e-6
    assert stats.kstest(phase, lambda p: p / max_phase).pvalue > 1e-3


def stationary_power_ratio(layer: LRU, normalized: bool) -> float:
    """Σ_j E|x_∞,j|² / Σ_j E|(Bu)_j|² on white-noise input."""
    u = torch.randn(4, 400, layer.d_model)
    with torch.no_grad():
        if not normalized:
            layer.gamma_log.zero_()
        bu = layer.driving_input(u)
        from kernels import diag_scan

        x = diag_scan(layer.eigenvalues(), bu)
        raw = bu * torch.exp(-layer.gamma_log)  # B u without γ
    burn_in = 200  # |λ| ≤ 0.9: the initial transient has decayed below 0.9^200
    return float(x[:, burn_in:].abs().pow(2).mean() / raw.abs().pow(2).mean())


def test_gamma_normalization_keeps_the_state_power_of_the_input():
    r_min, r_max = 0.4, 0.9
    layer = LRU(16, 1024, r_min=r_min, r_max=r_max)
    assert stationary_power_ratio(layer, normalized=True) == pytest.approx(1.0, rel=0.05)
    # Without γ, Thm 5.3.2: E‖x_∞‖² = log((1 − r_min²)/(1 − r_max²)) / (r_max² − r_min²) E‖Bu‖².
    expected = math.log((1 - r_min**2) / (1 - r_max**2)) / (r_max**2 - r_min**2)
    assert stationary_power_ratio(layer, normalized=False) == pytest.approx(expected, rel=0.05)


def test_projection_init_variances():
    layer = LRU(64, 256)
    assert layer.B_re.var().item() == pytest.approx(1 / (2 * 64), rel=0.1)
    assert layer.B_im.var().item() == pytest.approx(1 / (2 * 64), rel=0.1)
    assert layer.C_re.var().item() == pytest.approx(1 / 256, rel=0.1)


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_shapes_and_gradient_flow(norm, bidirectional):
    config = LRUConfig(d_model=16, d_state=8, depth=2, dropout=0.1, norm=norm,
                       bidirectional=bidirectional)
    model = LRUClassifier(config, 10, vocab_size=20)
    tokens = torch.randint(20, (4, 30))
    logits = model(tokens, torch.tensor([30, 12, 5, 1]))
    assert logits.shape == (4, 10)
    logits.logsumexp(-1).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_pixels_encoder_shape():
    model = LRUClassifier(LRUConfig(d_model=8, d_state=4, depth=1), 2, d_input=1)
    assert model(torch.rand(3, 64, 1)).shape == (3, 2)


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_the_prediction(bidirectional, norm):
    config = LRUConfig(d_model=8, d_state=6, depth=2, norm=norm, bidirectional=bidirectional)
    model = LRUClassifier(config, 3, vocab_size=12).eval()
    tokens = torch.randint(1, 12, (1, 9))
    padded = torch.cat([tokens, torch.zeros(1, 7, dtype=torch.long)], dim=1)
    alone = model(tokens, torch.tensor([9]))
    torch.testing.assert_close(model(padded, torch.tensor([9])), alone, rtol=1e-5, atol=1e-5)


def test_retrieval_two_tower_is_symmetric_in_shape_and_trains():
    model = LRURetrieval(LRUConfig(d_model=8, d_state=4, depth=1), vocab_size=30)
    a, b = torch.randint(30, (5, 20)), torch.randint(30, (5, 25))
    logits = model(a, b, torch.full((5,), 20), torch.full((5,), 25))
    assert logits.shape == (5, 2)
    logits.sum().backward()
    assert model.encoder.embed.weight.grad.abs().sum() > 0


def test_param_groups_split_recurrent_parameters():
    model = LRUClassifier(LRUConfig(d_model=8, d_state=4, depth=3), 2, vocab_size=5)
    recurrent, other = lru_param_groups(model, lr_factor=0.25, weight_decay=0.05)
    assert recurrent["lr_scale"] == 0.25 and recurrent["weight_decay"] == 0.0
    assert other["weight_decay"] == 0.05 and "lr_scale" not in other
    names = {id(p): n for n, p in model.named_parameters()}
    recurrent_names = sorted(names[id(p)].rsplit(".", 1)[-1] for p in recurrent["params"])
    assert recurrent_names == sorted(["nu_log", "theta_log", "gamma_log", "B_re", "B_im"] * 3)
    both = [id(p) for p in recurrent["params"]] + [id(p) for p in other["params"]]
    assert sorted(both) == sorted(names)
    assert "weight_decay" not in lru_param_groups(model, 0.5)[1]
