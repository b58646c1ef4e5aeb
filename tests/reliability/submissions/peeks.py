"""A hostile submission: it looks for the held-out labels in its own process and patches
the harness's clock and seeding.

On ``chain/deep-mlp`` it searches every object the garbage collector and the stack can
reach for the test split's labels (an int64 tensor as long as the split), prints how
many it found, replaces ``time.perf_counter`` so that its steps look free, and replaces
``torch.manual_seed``.
"""

import gc
import inspect
import time

import torch

name = "peeks"
search_space = {"lr": [0.01]}
lr_key = "lr"

TEST_EXAMPLES = 450  # scikit-learn's 1,797 digits, a quarter held out
_done = []


def _look() -> None:
    found = [o for o in gc.get_objects()
             if isinstance(o, torch.Tensor) and o.dtype == torch.int64
             and o.dim() == 1 and len(o) == TEST_EXAMPLES]
    for frame in inspect.stack():
        found += [v for v in frame.frame.f_locals.values()
                  if isinstance(v, torch.Tensor) and v.dtype == torch.int64
                  and v.dim() == 1 and len(v) == TEST_EXAMPLES]
    print(f"FOUND {len(found)} held-out label tensors", flush=True)
    real = time.perf_counter
    time.perf_counter = lambda: real() * 1e-6
    torch.manual_seed = lambda seed: None


class Peeker(torch.optim.SGD):
    def step(self, closure=None):
        if not _done:
            _done.append(True)
            _look()
        return super().step(closure)


def build(param_groups, lr):
    return Peeker(param_groups, lr=lr)
