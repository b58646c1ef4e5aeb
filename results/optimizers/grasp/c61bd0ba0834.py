"""GRASP, gradient argument stochastic perturbation (thesis §6.4.1):
``x ← x − η ∇f(x + σ ζ_k)``, ζ standard Gaussian on every parameter. In expectation it
descends the smoothed loss ``E f(x + σζ)``; on a two-layer linear net that adds the
nuclear-norm-like penalty of Eq. 172 plus a ``σ⁴ d₁``-variance term that grows with
the width (Eq. 175). The returned loss is the one at the perturbed point.

The grid holds σ = 0.1 with η = 0.1 (the valley/linear-net setting, as in Fig. 59) and the
widening valley's Thm 6.3.2 setting η = α/(2D) = 0.00125, σ² = αD/(2d) = 0.125."""

from suites.optimizers._noise import GRASP

name = "grasp"
search_space = {"lr": [0.00125, 0.003, 0.01, 0.1], "sigma": [0.1, 0.125**0.5]}
lr_key = "lr"
#: The self-tuning track's configuration: the thesis' linear-network η = 0.1, σ = 0.1 (Fig. 59).
defaults = {"lr": 0.1, "sigma": 0.1}


def build(param_groups, lr, sigma):
    return GRASP(param_groups, lr=lr, sigma=sigma)
