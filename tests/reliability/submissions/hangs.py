"""A hostile submission: from its second step on (validation takes one) its step never
returns on the chain tasks."""

import time

import torch

name = "hangs"
search_space = {"lr": [0.01]}
lr_key = "lr"


class Hanging(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        self.steps += 1
        chain = any(p.dtype == torch.float64 for g in self.param_groups for p in g["params"])
        if chain and self.steps > 1:
            while True:
                time.sleep(0.05)
        return super().step(closure)


def build(param_groups, lr):
    return Hanging(param_groups, lr=lr)
