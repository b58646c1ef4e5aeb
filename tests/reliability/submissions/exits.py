"""A hostile submission: its step ends the whole process on the chain tasks."""

import os

import torch

name = "exits"
search_space = {"lr": [0.01]}
lr_key = "lr"


class Exiting(torch.optim.SGD):
    def step(self, closure=None):
        if any(p.dtype == torch.float64 for g in self.param_groups for p in g["params"]):
            os._exit(3)
        return super().step(closure)


def build(param_groups, lr):
    return Exiting(param_groups, lr=lr)
