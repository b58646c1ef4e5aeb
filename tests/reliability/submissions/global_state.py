"""A hostile submission: it changes process-wide torch state at import and in build."""

import torch

name = "global-state"
search_space = {"lr": [0.01, 0.1]}
lr_key = "lr"

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)
_original_backward = torch.Tensor.backward


def _doubled_backward(self, *args, **kwargs):
    _original_backward(self * 2, *args, **kwargs)


torch.Tensor.backward = _doubled_backward


def build(param_groups, lr):
    torch.set_default_dtype(torch.float64)
    return torch.optim.SGD(param_groups, lr=lr)
