"""Heavy-ball momentum (Polyak), in torch's undamped form: ``m ← β m + g``,
``x ← x − η m``, β = 0.9. This equals the thesis form ``m ← β m + (1−β) g`` with step
``η / (1−β)``, so the grid is the SGD grid divided by ten."""

import torch

name = "momentum"
search_space = {"lr": [0.0003, 0.001, 0.003, 0.01, 0.02, 0.04, 0.08]}
lr_key = "lr"
#: The self-tuning track's configuration: torch.optim.SGD's default step size, with β = 0.9.
defaults = {"lr": 0.001}


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr, momentum=0.9)
