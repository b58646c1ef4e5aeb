"""A submission that prints at import and in build: allowed."""

import torch

print("hello from a submission")

name = "prints"
search_space = {"lr": [0.01, 0.1]}
lr_key = "lr"


def build(param_groups, lr):
    print("building with", lr)
    return torch.optim.SGD(param_groups, lr=lr)
