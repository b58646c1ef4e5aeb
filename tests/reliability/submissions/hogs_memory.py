"""A hostile submission: its first step allocates 1.5 GiB and holds it."""

import torch

name = "hogs-memory"
search_space = {"lr": [0.1]}
lr_key = "lr"

_held = []


class Hog(torch.optim.SGD):
    def step(self, closure=None):
        if not _held:
            _held.append(torch.ones(3 * 2**27, dtype=torch.float32))  # 1.5 GiB, touched
        return super().step(closure)


def build(param_groups, lr):
    return Hog(param_groups, lr=lr)
