"""NGN, the non-negative Gauss-Newton step size (thesis §4.3): ``γ = σ / (1 + σ‖g‖²/(2f))``,
``x ← x − γ g``. The step is about σ where the landscape is flat and shrinks where it is
sharp (``γ ∈ [1/(L + 1/σ), σ]`` for L-smooth f ≥ 0), so large σ stays stable where
gradient descent with step σ diverges (Thm 4.3.1). Fused step from ``kernels.optim``."""

from kernels.optim import NGN

name = "ngn"
search_space = {"sigma": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]}
lr_key = "sigma"
#: The self-tuning track's configuration: the middle of the thesis' CIFAR-10 sweep
#: σ ∈ [0.1, 10] (Fig. 41).
defaults = {"sigma": 1.0}


def build(param_groups, sigma):
    return NGN(param_groups, sigma=sigma)
