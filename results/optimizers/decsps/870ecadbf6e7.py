"""DecSPS, the decreasing stochastic Polyak step size (thesis §4.2):
``γ_k = min{(f − ℓ*) / ‖g‖², c_{k−1} γ_{k−1}} / c_k``, ``c_k = c₀ √(k+1)``,
``c_{−1} = c₀``, ``γ_{−1} = γ_b``, ``ℓ* = 0``. The thesis' defaults are c₀ = 1,
γ_b = 10; the grid brackets them."""

from suites.optimizers._scalar_step import DecSPS

name = "decsps"
search_space = {"c0": [0.5, 1.0], "gamma_b": [1.0, 10.0, 100.0]}
lr_key = None
#: The self-tuning track's configuration: the thesis' c₀ = 1, γ_b = 10 (§4.2, Fig. 33).
defaults = {"c0": 1.0, "gamma_b": 10.0}


def build(param_groups, c0, gamma_b):
    return DecSPS(param_groups, c0=c0, gamma_b=gamma_b)
