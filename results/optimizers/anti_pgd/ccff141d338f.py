"""Anti-PGD, anti-correlated perturbed gradient descent (thesis §6.3, Eq. 147):
``x ← x − η ∇f(x) + (ξ_{k+1} − ξ_k)`` with i.i.d. ±σ coordinates (the Bernoulli noise
of Thm 6.3.2). The parameters hold ``x``; in ``w = x − ξ`` this is
``w ← w − η ∇f(w + ξ_k)``, which in expectation descends ``f + (σ²/2) Tr ∇²f``.

The grid holds the setting of Thm 6.3.2 / Fig. 57 on the widening valley (d = 100,
α = 0.25, D = 100): η = α/(2D) = 0.00125, σ² = αD/(2d) = 0.125; there Anti-PGD moves to
flatter minima (‖u‖² < αD). Same grid as PGD: steps up to 0.01 keep the valley's
v-direction stable (η(‖u‖² + dσ²) < 2); 0.1 serves the chain and the linear net."""

from suites.optimizers._noise import AntiPGD

name = "anti_pgd"
search_space = {"lr": [0.00125, 0.003, 0.01, 0.1], "sigma": [0.01, 0.125**0.5]}
lr_key = "lr"
#: The self-tuning track's configuration: the thesis' η = 0.01, σ = 0.005 (Fig. 56).
defaults = {"lr": 0.01, "sigma": 0.005}


def build(param_groups, lr, sigma):
    return AntiPGD(param_groups, lr=lr, sigma=sigma, noise="bernoulli")
