"""SGD: ``x ← x − η g`` with the minibatch gradient ``g`` (full-batch GD where the task
has one data point). The step-size grid spans the stable range of every task: on the
neural chain of depth L the largest stable step at the minimum is about 2/L."""

import torch

name = "sgd"
search_space = {"lr": [0.003, 0.01, 0.03, 0.1, 0.2, 0.4, 0.8]}
lr_key = "lr"
#: The self-tuning track's configuration: torch.optim.SGD's default step size (SGD has no
#: published one).
defaults = {"lr": 0.001}


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr)
