"""Perturbed gradient descent (thesis §6.3, Eq. 146): ``x ← x − η ∇f(x) + ξ_{k+1}``, with
i.i.d. ±σ coordinates (the Bernoulli noise of Thm 6.3.2).

The grid holds the setting of Thm 6.3.2 / Fig. 57 on the widening valley (d = 100,
α = 0.25, D = 100): η = α/(2D) = 0.00125, σ² = αD/(2d) = 0.125; there PGD drifts to
sharper minima (‖u‖² > D/α). Same grid as Anti-PGD, so the two differ only in the
noise's correlation. Steps up to 0.01 keep the valley's v-direction stable
(η(‖u‖² + dσ²) < 2); 0.1 serves the chain and the linear net."""

from suites.optimizers._noise import PGD

name = "pgd"
search_space = {"lr": [0.00125, 0.003, 0.01, 0.1], "sigma": [0.01, 0.125**0.5]}
lr_key = "lr"
#: The self-tuning track's configuration: the thesis' η = 0.01, σ = 0.005 (Fig. 56).
defaults = {"lr": 0.01, "sigma": 0.005}


def build(param_groups, lr, sigma):
    return PGD(param_groups, lr=lr, sigma=sigma, noise="bernoulli")
