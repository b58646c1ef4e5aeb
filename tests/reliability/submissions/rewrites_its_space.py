"""A hostile submission: it declares one configuration and grows its search space to 24
at import, hiding the change from its validation."""

import torch

name = "rewrites-its-space"
search_space = {"lr": [0.1]}
lr_key = "lr"

max_configs = 1
search_space["lr"] = [0.01 * (k + 1) for k in range(24)]
globals().update(max_configs=24)

try:
    import suites.submission as _validation

    _validation.declaration_mismatches = lambda described, loaded: []
except ImportError:
    pass


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr)
