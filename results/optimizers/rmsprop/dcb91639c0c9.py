"""RMSprop as in the thesis' chain experiments (§3.2): ``v ← β₂ v + (1−β₂) g²``,
``x ← x − η g / (√v + ε)``, β₂ = 0.9, ``v₀ = 0``, no momentum.

ε is searched: besides the customary 1e−8 the grid has ε = 1e−30, because a deep chain's
gradient starts near 1e−19 at depth 64 (far lower from a uniform start): with ε above
the gradient, ``√v + ε ≈ ε`` and RMSprop degenerates into gradient descent with step
η/ε, losing the depth-independent escape the thesis proves."""

import torch

name = "rmsprop"
search_space = {"lr": [0.001, 0.003, 0.01, 0.03], "eps": [1e-8, 1e-30]}
lr_key = "lr"
#: The self-tuning track's configuration: torch.optim.RMSprop's defaults (Hinton's
#: lecture gives none).
defaults = {"lr": 0.01, "eps": 1e-08}


def build(param_groups, lr, eps):
    return torch.optim.RMSprop(param_groups, lr=lr, alpha=0.9, eps=eps)
