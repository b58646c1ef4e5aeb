"""A hostile submission: its second step (validation takes one) prints 50 MB, then fails."""

import sys

import torch

name = "floods-output"
search_space = {"lr": [0.1]}
lr_key = "lr"


class Flood(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        self.steps += 1
        if self.steps == 1:
            return super().step(closure)
        line = "x" * 999 + "\n"
        for _ in range(50_000):
            sys.stdout.write(line)
        print("THE LAST LINE", flush=True)
        raise RuntimeError("flooded")


def build(param_groups, lr):
    return Flood(param_groups, lr=lr)
