"""Signum: sign descent with momentum (Bernstein et al., 2018).

``m ← β m + (1 − β) g``, ``x ← x − η sign(m)``: every coordinate moves by exactly η,
whatever the scale of its gradient, the extreme case of the per-coordinate
normalization that lets Adam and RMSprop leave the plateaus of deep chains.
"""

import torch

name = "signum"
search_space = {"lr": [1e-3, 1e-2, 1e-1], "beta": [0.0, 0.9]}
lr_key = "lr"


class Signum(torch.optim.Optimizer):
    def __init__(self, params, lr, beta=0.9):
        super().__init__(params, {"lr": lr, "beta": beta})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                momentum.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                p.add_(momentum.sign(), alpha=-group["lr"])
        return loss


def build(param_groups, lr, beta):
    return Signum(param_groups, lr=lr, beta=beta)
