"""A hostile submission: its step never returns on the chain tasks."""

import time

import torch

name = "hangs"
search_space = {"lr": [0.01]}
lr_key = "lr"


class Hanging(torch.optim.SGD):
    def step(self, closure=None):
        if any(p.dtype == torch.float64 for g in self.param_groups for p in g["params"]):
            while True:
                time.sleep(0.05)
        return super().step(closure)


def build(param_groups, lr):
    return Hanging(param_groups, lr=lr)
