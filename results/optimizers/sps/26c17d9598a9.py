"""SPS_max, the stochastic Polyak step size (Loizou et al., 2021; thesis §4.1):
``γ = min{(f − f*) / (c ‖g‖²), γ_b}``, ``x ← x − γ g``, with ``f* = 0`` (the losses here
are non-negative). On a plateau the Polyak ratio is huge and the cap ``γ_b`` sets the
step."""

from suites.optimizers._scalar_step import SPSMax

name = "sps"
search_space = {"c": [0.5, 1.0], "gamma_b": [0.01, 0.1, 1.0, 10.0]}
lr_key = None
#: The self-tuning track's configuration: c = 0.5 of Loizou et al. (2021), the cap γ_b = 10.
defaults = {"c": 0.5, "gamma_b": 10.0}


def build(param_groups, c, gamma_b):
    return SPSMax(param_groups, c=c, gamma_b=gamma_b)
