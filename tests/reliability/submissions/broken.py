"""A submission that fails to import."""

import torch

name = "broken"
search_space = {"lr": [0.01]}
lr_key = "lr"
raise RuntimeError("this file is broken at line 8")


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr)
