"""Shared pieces of the kernels.optim tests: a small awkward model, tolerances, tensors."""

import copy

import pytest
import torch

from kernels.optim import NGN
from kernels.optim import triton_optim as T

BACKENDS = ["torch", "triton"]
#: The same, with the Triton backend (interpreted: 10-25 s for a long run) marked slow;
#: the torch backend of the same test and the awkward-shape tests keep it in make test.
BACKENDS_SLOW_TRITON = ["torch", pytest.param("triton", marks=pytest.mark.slow)]

# fp32 round-off bound after hundreds of steps: |Δp| <= ATOL_FP32 * (1 + |p|).
ATOL_FP32 = 2e-6
# fp16 parameters: fp32 round-off may move a result across an fp16 rounding boundary,
# so the two backends may differ by one fp16 ulp (<= 2^-10 |p|).
ATOL_FP16 = 2.0**-10


def assert_close_fp32(actual, expected, bound=ATOL_FP32):
    for a, e in zip(actual, expected, strict=True):
        if a.numel() == 0:
            continue
        a = torch.view_as_real(a) if a.is_complex() else a
        e = torch.view_as_real(e) if e.is_complex() else e
        err = ((a.detach() - e.detach()).abs() / (1 + e.detach().abs())).max().item()
        assert err <= bound, f"max |Δ|/(1+|p|) = {err:.3g} > {bound:.3g}"


class Net(torch.nn.Module):
    """A small MLP with awkward shapes, one layer spanning two 1024-blocks, and a
    complex parameter (handled as real pairs, as in the LRU)."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(13, 37)
        self.fc2 = torch.nn.Linear(37, 41)
        self.fc3 = torch.nn.Linear(41, 1)
        self.z = torch.nn.Parameter(0.3 * torch.randn(4, 3, dtype=torch.complex64))

    def forward(self, x):
        h = torch.tanh(self.fc2(torch.tanh(self.fc1(x))))
        mix = (x[:, :4].to(torch.complex64) @ self.z).abs().pow(2).sum(1, keepdim=True)
        return self.fc3(h) + 0.1 * mix

    def groups(self):
        """Per-group lr and weight decay; the last group has no decay."""
        return [
            {"params": self.fc1.parameters(), "lr": 3e-3, "weight_decay": 0.1},
            {"params": self.fc2.parameters()},
            {"params": [*self.fc3.parameters(), self.z], "lr": 5e-3, "weight_decay": 0.0},
        ]


def data(n=32):
    x = torch.randn(n, 13)
    return x, torch.sin(x[:, :1]) + 0.1 * x[:, 1:2]


def launches(name):
    return T.LAUNCHES[name]


def awkward_tensors(dtype=torch.float32):
    """Odd lengths, one tensor over several programs (with ``chunk_for(dtype)``), tails
    of 1 after whole blocks (3073 = 3 fp32 blocks of 1024 + 1, 6145 = 3 fp16 blocks of
    2048 + 1), an empty one, a transposed (dense, non-contiguous) one and 100 tiny ones."""
    shapes = [(1,), (3,), (1023,), (1025,), (3073,), (5003,), (6145,), (0,), (17, 3)]
    shapes += [(int(n),) for n in torch.randint(1, 40, (100,))]
    params = [torch.randn(s).to(dtype) for s in shapes]
    params.append(torch.randn(7, 5).to(dtype).t())
    grads = [torch.randn(p.shape).to(dtype) for p in params]  # the last has other strides
    return params, grads


def chunk_for(dtype):
    """Two blocks per program (blocks hold 16 bytes per thread: 1024 fp32, 2048 fp16
    elements), so programs run a whole-block body and then a masked tail."""
    return 2 * T.block_size("ngn", dtype)


def adamw_state(params, dtype=torch.float32):
    """Zero AdamW state: moments laid out like each parameter, and the step counts."""
    return (
        [torch.zeros_like(p, dtype=dtype) for p in params],
        [torch.zeros_like(p, dtype=dtype) for p in params],
        [torch.zeros((), device=p.device) for p in params],
    )


def clone_all(tensors):
    """Copies with the same strides (``clone`` preserves a dense layout)."""
    return [t.clone() for t in tensors]


def closure_for(model, opt, x, y):
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    return closure


def train(model, opt, steps, x, y):
    closure = closure_for(model, opt, x, y)
    for _ in range(steps):
        opt.step(closure)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: on a shared 2-core machine, torch's thread pool only
    # oversubscribes the cores (a 100x slowdown here), so run single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ngn_groups(model):
    """Three groups with different σ, momentum and decay on the second."""
    return [
        {"params": model.fc1.parameters(), "sigma": 0.3},
        {"params": model.fc2.parameters(), "momentum": 0.9, "weight_decay": 0.05},
        {"params": [*model.fc3.parameters(), model.z]},
    ]


def two_runs(**kwargs):
    """A model trained by one-pass NGN and a copy trained by two-pass NGN."""
    ours = Net()
    theirs = copy.deepcopy(ours)
    backend = kwargs.pop("backend", "torch")
    one = NGN(ngn_groups(ours), sigma=0.5, backend=backend, one_pass=True, **kwargs)
    two = NGN(ngn_groups(theirs), sigma=0.5, backend=backend, **kwargs)
    return (ours, one), (theirs, two)
