"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay
``x ← x (1 − η λ)`` before the Adam step; β = (0.9, 0.999), λ = 0.01. Fused step from
``kernels.optim``.

ε is searched: besides the customary 1e−8 the grid has ε = 1e−30, because a deep chain's
gradient starts near 1e−19 at depth 64: with ε above the gradient the adaptive
normalization is lost (thesis §3.2)."""

from kernels.optim import AdamW

name = "adamw"
search_space = {"lr": [0.001, 0.003, 0.01, 0.03], "eps": [1e-8, 1e-30]}
lr_key = "lr"
#: The self-tuning track's configuration: Loshchilov & Hutter (2019): Adam's defaults.
defaults = {"lr": 0.001, "eps": 1e-08}


def build(param_groups, lr, eps):
    return AdamW(param_groups, lr=lr, betas=(0.9, 0.999), eps=eps, weight_decay=0.01)
