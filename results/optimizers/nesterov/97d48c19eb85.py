"""Nesterov momentum in torch's form: ``m ← β m + g``, ``x ← x − η (g + β m)``, β = 0.9
(the gradient is taken at the current iterate, the look-ahead folded into the update).
Same step-size grid as heavy ball."""

import torch

name = "nesterov"
search_space = {"lr": [0.0003, 0.001, 0.003, 0.01, 0.02, 0.04, 0.08]}
lr_key = "lr"
#: The self-tuning track's configuration: torch.optim.SGD's default step size, with β = 0.9.
defaults = {"lr": 0.001}


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr, momentum=0.9, nesterov=True)
