"""The deep LRU of ``suites.lra.model`` against the formulas of thesis §5.3."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from kernels import diag_scan
from suites.lra.model import (
    DESIGN_STEPS,
    LRU,
    DenseRNN,
    LRUClassifier,
    LRUConfig,
    LRURetrieval,
    lru_param_groups,
    recurrent_layer,
    ring_init,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/suites/conftest.py


def eigenvalues_from_equations(layer: LRU) -> torch.Tensor:
    """Λ's diagonal in complex128, written out for each parameterization of Table 4."""
    if layer.parameterization == "stable_exp":
        nu, theta = torch.exp(layer.nu_log.double()), torch.exp(layer.theta_log.double())
        return torch.exp(-nu + 1j * theta)
    if layer.parameterization == "exp":
        return torch.exp(-layer.nu.double() + 1j * layer.theta.double())
    assert layer.parameterization == "real_imag"
    return layer.lam_re.double() + 1j * layer.lam_im.double()


def naive_lru(layer: LRU, u: torch.Tensor) -> torch.Tensor:
    """The LRU read off its equations, one time step at a time, in complex128."""
    with torch.no_grad():
        lam = eigenvalues_from_equations(layer)
        gamma = torch.exp(layer.gamma_log.double()) if layer.gamma_norm else 1.0
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


def naive_dense_rnn(layer: DenseRNN, u: torch.Tensor) -> torch.Tensor:
    """``x_k = σ(A x_{k−1} + B u_k)``, ``y_k = C x_k + D u_k``, one step at a time, float64."""
    sigma = {"tanh": torch.tanh, "relu": torch.relu, "dense": lambda x: x}[layer.activation]
    with torch.no_grad():
        A, B, C, D = (t.double() for t in (layer.A, layer.B, layer.C, layer.D))
        u = u.double()
        batch, L, _ = u.shape
        y = u * D
        directions = [range(L)] + ([range(L - 1, -1, -1)] if layer.bidirectional else [])
        for d, order in enumerate(directions):
            x = torch.zeros(batch, layer.d_state, dtype=torch.float64)
            for k in order:
                x = sigma(x @ A.T + u[:, k] @ B.T)
                y[:, k] += x @ C[d].T
        return y


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lru_matches_its_equations(bidirectional):
    layer = LRU(6, 5, r_min=0.5, r_max=0.99, bidirectional=bidirectional)
    u = torch.randn(3, 17, 6)
    got = layer(u).double()
    torch.testing.assert_close(got, naive_lru(layer, u), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("step", list(DESIGN_STEPS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_design_step_matches_its_equations(step, bidirectional):
    options = DESIGN_STEPS[step]
    gamma_norm = options["gamma_norm"]
    layer = recurrent_layer(
        options["recurrence"], 6, 5, r_min=0.5, r_max=0.99, bidirectional=bidirectional,
        ring_init=options["ring_init"], gamma_norm=gamma_norm,
    )  # fmt: skip
    u = torch.randn(3, 17, 6)
    if isinstance(layer, DenseRNN):
        assert not gamma_norm
        expected = naive_dense_rnn(layer, u)
    else:
        expected = naive_lru(layer, u)
        assert hasattr(layer, "gamma_log") == gamma_norm
    torch.testing.assert_close(layer(u).double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("recurrence", ["real_imag", "exp", "stable_exp"])
def test_diagonal_forms_with_gamma_and_ring_init_match_their_equations(recurrence):
    layer = LRU(4, 7, r_min=0.8, r_max=0.95, parameterization=recurrence)
    u = torch.randn(2, 12, 4)
    torch.testing.assert_close(layer(u).double(), naive_lru(layer, u), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("step", list(DESIGN_STEPS))
def test_every_design_step_trains_every_parameter(step):
    config = LRUConfig(d_model=8, d_state=6, depth=2, bidirectional=True, **DESIGN_STEPS[step])
    model = LRUClassifier(config, 3, vocab_size=11)
    logits = model(torch.randint(11, (4, 13)), torch.tensor([13, 9, 4, 1]))
    logits.logsumexp(-1).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_only_the_stable_exponential_form_keeps_every_eigenvalue_in_the_unit_disk():
    largest = {}
    for form, names in [("stable_exp", ("nu_log", "theta_log")), ("exp", ("nu", "theta")),
                        ("real_imag", ("lam_re", "lam_im"))]:  # fmt: skip
        layer = LRU(4, 256, parameterization=form)
        with torch.no_grad():
            for name in names:
                getattr(layer, name).normal_(0, 3)
        modulus = layer.eigenvalues().abs()
        assert torch.isfinite(modulus).all()
        largest[form] = modulus.max().item()
    assert largest["stable_exp"] < 1
    # exp(−ν + iθ) with ν < 0, or a + ib with a² + b² > 1: outside the disk, unstable.
    assert largest["exp"] > 10 and largest["real_imag"] > 3


@pytest.mark.parametrize("form", ["real_imag", "exp", "stable_exp"])
def test_without_ring_init_lambda_is_uniform_on_the_unit_disk(form):
    # The Glorot spectrum of Thm 5.3.1: r_min, r_max and max_phase are ignored.
    layer = LRU(2, 5000, r_min=0.9, r_max=0.99, max_phase=0.1, parameterization=form,
                ring_init=False)  # fmt: skip
    lam = layer.eigenvalues().detach().to(torch.complex128)
    assert stats.kstest(lam.abs().pow(2).numpy(), "uniform").pvalue > 1e-3
    phase = torch.remainder(lam.angle(), 2 * math.pi).numpy()
    assert stats.kstest(phase, "uniform", args=(0, 2 * math.pi)).pvalue > 1e-3
    ringed = LRU(2, 5000, r_min=0.9, r_max=0.99, max_phase=0.1, parameterization=form)
    modulus = ringed.eigenvalues().detach().abs()
    assert modulus.min() >= 0.9 - 1e-5 and modulus.max() <= 0.99 + 1e-5


def test_dense_glorot_spectrum_fills_the_unit_disk():
    # Thm 5.3.1 at N = 400: |λ|² is close to uniform on [0, 1].
    modulus2 = DenseRNN(2, 400).eigenvalues().abs().pow(2)
    assert modulus2.mean().item() == pytest.approx(0.5, abs=0.03)
    assert (modulus2 < 1.1).float().mean().item() > 0.98


def test_dense_recurrences_refuse_ring_init_and_gamma():
    with pytest.raises(ValueError, match="gamma_norm"):
        LRUConfig(recurrence="tanh", ring_init=False)
    with pytest.raises(ValueError, match="ring_init"):
        LRUConfig(recurrence="dense", gamma_norm=False)
    with pytest.raises(ValueError, match="recurrence must be one of"):
        LRUConfig(recurrence="gru")
    assert LRUConfig(**DESIGN_STEPS["rnn-relu"]).recurrence == "relu"


def test_default_lru_is_unchanged():
    """The defaults are the LRU with the draws, order and names it had before ablations."""
    assert LRUConfig() == LRUConfig(**DESIGN_STEPS["lru"])
    torch.manual_seed(5)
    layer = LRU(6, 10, r_min=0.5, r_max=0.99, max_phase=1.0)
    torch.manual_seed(5)
    nu_log, theta_log = ring_init(10, 0.5, 0.99, 1.0)
    B_re, B_im = torch.randn(10, 6) / math.sqrt(12), torch.randn(10, 6) / math.sqrt(12)
    C_re, C_im = torch.randn(1, 6, 10) / math.sqrt(10), torch.randn(1, 6, 10) / math.sqrt(10)
    D = torch.randn(6)
    gamma_log = 0.5 * torch.log(1 - torch.exp(-2 * torch.exp(nu_log.double()))).float()
    expected = {"nu_log": nu_log, "theta_log": theta_log, "gamma_log": gamma_log,
                "B_re": B_re, "B_im": B_im, "C_re": C_re, "C_im": C_im, "D": D}  # fmt: skip
    state = layer.state_dict()
    assert list(state) == list(expected)
    for name, value in expected.items():
        torch.testing.assert_close(state[name], value, rtol=1e-6, atol=0, msg=name)


@pytest.mark.parametrize("recurrence", ["tanh", "relu"])
def test_padding_does_not_change_a_nonlinear_rnn_prediction(recurrence):
    steps = DESIGN_STEPS["rnn-" + recurrence]
    config = LRUConfig(d_model=8, d_state=6, depth=2, norm="layer", bidirectional=True, **steps)
    model = LRUClassifier(config, 3, vocab_size=12).eval()
    tokens = torch.randint(1, 12, (1, 9))
    padded = torch.cat([tokens, torch.zeros(1, 7, dtype=torch.long)], dim=1)
    alone = model(tokens, torch.tensor([9]))
    torch.testing.assert_close(model(padded, torch.tensor([9])), alone, rtol=1e-5, atol=1e-5)


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


def stationary_power_ratio(layer: LRU) -> float:
    """Σ_j E|x_∞,j|² / Σ_j E|(Bu)_j|² on white-noise input."""
    u = torch.randn(4, 400, layer.d_model)
    with torch.no_grad():
        x = diag_scan(layer.eigenvalues(), layer.driving_input(u))
        B = torch.complex(layer.B_re, layer.B_im)
        raw = torch.complex(u, torch.zeros_like(u)) @ B.T  # B u without γ
    burn_in = 200  # |λ| ≤ 0.9: the initial transient has decayed below 0.9^200
    return float(x[:, burn_in:].abs().pow(2).mean() / raw.abs().pow(2).mean())


def test_gamma_normalization_keeps_the_state_power_of_the_input():
    r_min, r_max = 0.4, 0.9
    torch.manual_seed(1)
    layer = LRU(16, 1024, r_min=r_min, r_max=r_max)
    torch.manual_seed(1)
    plain = LRU(16, 1024, r_min=r_min, r_max=r_max, gamma_norm=False)
    assert not hasattr(plain, "gamma_log")
    torch.testing.assert_close(plain.eigenvalues(), layer.eigenvalues())  # same Λ and B
    torch.testing.assert_close(plain.B_re, layer.B_re)
    assert stationary_power_ratio(layer) == pytest.approx(1.0, rel=0.05)
    # Without γ, Thm 5.3.2: E‖x_∞‖² = log((1 − r_min²)/(1 − r_max²)) / (r_max² − r_min²) E‖Bu‖²
    # (≈ 2.3 here): the blow-up γ removes.
    expected = math.log((1 - r_min**2) / (1 - r_max**2)) / (r_max**2 - r_min**2)
    assert expected > 2
    assert stationary_power_ratio(plain) == pytest.approx(expected, rel=0.05)


def test_projection_init_variances():
    layer = LRU(64, 256)
    assert layer.B_re.var().item() == pytest.approx(1 / (2 * 64), rel=0.1)
    assert layer.B_im.var().item() == pytest.approx(1 / (2 * 64), rel=0.1)
    assert layer.C_re.var().item() == pytest.approx(1 / 256, rel=0.1)


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_shapes_and_gradient_flow(norm, bidirectional):
    config = LRUConfig(
        d_model=16, d_state=8, depth=2, dropout=0.1, norm=norm, bidirectional=bidirectional
    )
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


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("rnn-tanh", ["A", "B"]),
        ("dense-a", ["A", "B"]),
        ("real-imag", ["lam_re", "lam_im", "B_re", "B_im"]),
        ("exp", ["nu", "theta", "B_re", "B_im"]),
        ("ring-init", ["nu_log", "theta_log", "B_re", "B_im"]),
        ("lru", ["nu_log", "theta_log", "gamma_log", "B_re", "B_im"]),
    ],
)
def test_param_groups_split_every_design_step(step, expected):
    config = LRUConfig(d_model=8, d_state=4, depth=2, **DESIGN_STEPS[step])
    model = LRUClassifier(config, 2, vocab_size=5)
    recurrent, other = lru_param_groups(model, lr_factor=0.25)
    names = {id(p): n for n, p in model.named_parameters()}
    recurrent_names = sorted(names[id(p)].rsplit(".", 1)[-1] for p in recurrent["params"])
    assert recurrent_names == sorted(expected * 2)
    other_names = {names[id(p)].rsplit(".", 1)[-1] for p in other["params"]}
    assert not other_names & set(expected)
