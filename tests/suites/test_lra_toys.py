"""The §5.4 toys of ``suites.lra.toys`` against the thesis's claims (Figs. 47–48)."""

from __future__ import annotations

import math

import pytest
import torch

from suites.lra.toys import (
    convolution_data,
    convolution_kernel,
    learn_convolution,
    learn_powers,
    turning_problems,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/suites/conftest.py


def test_exponential_form_learns_to_turn_to_the_imaginary_axis_where_real_imag_stalls():
    """Fig. 48: |λ₀| = r* = 0.99, start phase in [0, 0.1], Adam (lr 1e-2), 500 steps.

    Near θ* = π/2 every exponential run fits the powers (relative loss < 1e-3) and none
    of the real+imaginary runs does; at θ* = 0.3 both fit, in a similar number of steps,
    so the gap is the phase's doing and not the form's in general.
    """
    n = 8
    near_target, near_init = turning_problems(0.99, math.pi / 2 - 0.05, n, seed=0)
    control_target, control_init = turning_problems(0.99, 0.3, n, seed=1)
    target = torch.cat([near_target, control_target])
    init = torch.cat([near_init, control_init])
    fits = {form: learn_powers(form, target, init, steps=500) for form in ("exp", "real_imag")}
    steps = {form: fit.steps_to_threshold for form, fit in fits.items()}
    loss = {form: fit.final_loss for form, fit in fits.items()}

    # Near π/2 (measured: exp reaches the threshold after 330–460 steps in 7 of 8 runs,
    # median final loss ~1e-9; real+imag in none, final loss ~1, i.e. still unfitted).
    assert (steps["exp"][:n] < 500).sum() >= 6
    assert (steps["real_imag"][:n] == 500).all()
    assert loss["exp"][:n].median() < 1e-6
    assert loss["real_imag"][:n].median() > 0.1
    # Control: both fit every run, within a factor 1.5 of each other in median steps.
    assert (steps["exp"][n:] < 500).all() and (steps["real_imag"][n:] < 500).all()
    ratio = steps["real_imag"][n:].double().median() / steps["exp"][n:].double().median()
    assert 1 / 1.5 < ratio < 1.5


def test_the_same_eigenvalue_starts_both_forms():
    target, init = turning_problems(0.9, 1.0, 4)
    for form in ("exp", "real_imag", "stable_exp"):
        fit = learn_powers(form, target, init, steps=0)
        torch.testing.assert_close(fit.final_eigenvalue, init)
    torch.testing.assert_close(init.abs(), torch.full((4,), 0.9, dtype=torch.float64))


def test_convolution_data_is_the_kernel_applied_causally():
    h = convolution_kernel()
    assert h[0].item() == pytest.approx(0.1)
    # The bump of Fig. 47: a local maximum of the kernel's tail near k = 70.
    assert 65 <= 40 + int(h[40:].argmax()) <= 80
    u, y = convolution_data(n=3)
    assert u.shape == y.shape == (3, 100, 1)
    for k in (0, 1, 57, 99):
        expected = (h[: k + 1].flip(0) * u[:, : k + 1, 0]).sum(-1)
        torch.testing.assert_close(y[:, k, 0], expected, rtol=1e-5, atol=1e-6)


def test_a_linear_recurrence_learns_the_convolution_where_tanh_stalls():
    """Fig. 47 at small scale: 32 sequences of length 100, 32 states, Adam lr 1e-2,
    200 full-batch steps; the target's mean square is 0.29.

    The tanh RNN (Glorot) stalls on a plateau near MSE 0.02: it fits the short lags and
    not the kernel's tail. The linear recurrence of the LRU (diagonal, stable
    exponential, ring init with r in [0.9, 0.999] and phases in [0, 0.5], γ) learns the
    whole kernel: MSE ~5e-5 (seed 0; ~3e-4 at seed 1).

    Not reproduced here: the thesis's own pairing, a dense linear RNN with Glorot A
    against tanh. At 32 and 100 states and lr 1e-3 or 1e-2 the dense linear RNN stalls
    on the same plateau (~0.02) or, when its Glorot spectrum pokes out of the unit disk,
    blows up over the 100 steps (initial MSE 1e5 at seed 1) and stays far above it; tanh
    was level with it or ahead. The same holds for the diagonal form with the Glorot
    spectrum (ring [0, 1]). The ring init near the unit circle is what learns the tail.
    """
    u, y = convolution_data()
    tanh = learn_convolution("tanh", u, y, d_state=32, steps=200, lr=1e-2)
    linear = learn_convolution(
        "stable_exp", u, y, d_state=32, steps=200, lr=1e-2, r_min=0.9, r_max=0.999,
        max_phase=0.5,
    )  # fmt: skip
    tanh_final, linear_final = tanh[-20:].mean().item(), linear[-20:].mean().item()
    assert tanh_final > 5e-3
    assert linear_final < 1e-3
    assert linear_final < tanh_final / 30
