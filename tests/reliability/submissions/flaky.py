"""A submission whose step fails on the chain tasks while a file FAIL lies beside it."""

from pathlib import Path

import torch

name = "flaky"
search_space = {"lr": [0.01, 0.1]}
lr_key = "lr"
MARKER = Path(__file__).with_name("FAIL")


class Flaky(torch.optim.SGD):
    def step(self, closure=None):
        chain = any(p.dtype == torch.float64 for g in self.param_groups for p in g["params"])
        if chain and MARKER.exists():
            raise ValueError("the marker file says fail")
        return super().step(closure)


def build(param_groups, lr):
    return Flaky(param_groups, lr=lr)
