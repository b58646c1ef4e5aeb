"""A hostile submission: from its second step on (validation takes one) its step ends the
whole process on the chain tasks."""

import os

import torch

name = "exits"
search_space = {"lr": [0.01]}
lr_key = "lr"


class Exiting(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        self.steps += 1
        chain = any(p.dtype == torch.float64 for g in self.param_groups for p in g["params"])
        if chain and self.steps > 1:
            os._exit(3)
        return super().step(closure)


def build(param_groups, lr):
    return Exiting(param_groups, lr=lr)
