"""A submission whose step fails on the chain tasks, from its second step on (validation
takes one), while a file FAIL lies beside it."""

from pathlib import Path

import torch

name = "flaky"
search_space = {"lr": [0.01, 0.1]}
lr_key = "lr"
MARKER = Path(__file__).with_name("FAIL")


class Flaky(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        self.steps += 1
        chain = any(p.dtype == torch.float64 for g in self.param_groups for p in g["params"])
        if chain and self.steps > 1 and MARKER.exists():
            raise ValueError("the marker file says fail")
        return super().step(closure)


def build(param_groups, lr):
    return Flaky(param_groups, lr=lr)
