"""Adam (Kingma & Ba, 2015; thesis §1): ``m ← β₁ m + (1−β₁) g``,
``v ← β₂ v + (1−β₂) g²``, ``x ← x − η m̂ / (√v̂ + ε)`` with bias-corrected ``m̂, v̂``;
β = (0.9, 0.999). Fused step from ``kernels.optim``.

ε is searched: besides the customary 1e−8 the grid has ε = 1e−30, because a deep chain's
gradient starts near 1e−19 at depth 64: with ε above the gradient Adam degenerates
into momentum gradient descent with step η/ε (thesis §3.2)."""

from kernels.optim import Adam

name = "adam"
search_space = {"lr": [0.001, 0.003, 0.01, 0.03], "eps": [1e-8, 1e-30]}
lr_key = "lr"
#: The self-tuning track's configuration: Kingma & Ba (2015), Algorithm 1.
defaults = {"lr": 0.001, "eps": 1e-08}


def build(param_groups, lr, eps):
    return Adam(param_groups, lr=lr, betas=(0.9, 0.999), eps=eps)
