"""The optimizer steps' custom ops (``kernels.optim.ops``): ``torch.library.opcheck`` on
both backends (Triton under the interpreter without a GPU), and
``torch.compile(fullgraph=True)`` of ``AdamW.step`` and ``NGN.step`` on the Triton
backend, against eager steps."""

import copy

import pytest
import torch
from optim_helpers import (
    BACKENDS,
    Net,
    assert_close_fp32,
    data,
    ngn_groups,
    one_thread,  # noqa: F401 (an autouse fixture)
)

from kernels.optim import NGN, AdamW


def op_tensors():
    """A vector, a matrix and a complex matrix, with gradients and zero state."""
    params = [torch.randn(5), torch.randn(3, 4), torch.randn(2, 3, dtype=torch.complex64)]
    grads = [torch.randn_like(p) for p in params]
    return params, grads, [torch.zeros_like(p) for p in params]


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_adamw_step(backend):
    params, grads, exp_avgs = op_tensors()
    exp_avg_sqs = [torch.zeros_like(p) for p in params]
    steps = [torch.zeros(()) for _ in params]
    args = (params, grads, exp_avgs, exp_avg_sqs, steps, 1e-2, 0.9, 0.999, 1e-8, 0.01, backend)
    torch.library.opcheck(torch.ops.lsb.adamw_step_.default, args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_grad_sq_norms(backend):
    _, grads, _ = op_tensors()
    torch.library.opcheck(torch.ops.lsb.grad_sq_norms.default, (grads, [2, 1], backend))
    sums = torch.ops.lsb.grad_sq_norms(grads, [2, 1], backend)
    expected = [sum(g.abs().square().sum() for g in grads[:2]), grads[2].abs().square().sum()]
    assert [s.item() for s in sums] == pytest.approx([e.item() for e in expected], rel=1e-5)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_ngn_update(backend, momentum):
    params, grads, buffers = op_tensors()
    buffers = buffers if momentum else []
    args = (params, grads, buffers, torch.tensor(0.3), 0.1, momentum, backend)
    torch.library.opcheck(torch.ops.lsb.ngn_update_.default, args)


def backward(model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    return loss


@pytest.mark.parametrize(
    "make,step",
    [
        (lambda m: AdamW(m.groups(), lr=1e-2, backend="triton"), lambda opt, loss: opt.step()),
        (
            lambda m: NGN(ngn_groups(m), sigma=0.5, backend="triton"),
            lambda opt, loss: opt.step(loss=loss),
        ),
    ],
    ids=["adamw", "ngn"],
)
def test_compiled_step_on_triton_matches_eager(make, step):
    # aot_eager traces through the ops' fake kernels as inductor does and runs the Triton
    # kernels (interpreted here); fullgraph: no graph break anywhere in the step.
    torch._dynamo.reset()
    ours = Net()
    theirs = copy.deepcopy(ours)
    ours_opt, theirs_opt = make(ours), make(theirs)
    x, y = data()
    for model, opt in ((ours, ours_opt), (theirs, theirs_opt)):
        step(opt, backward(model, opt, x, y))  # the state exists before tracing
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    for _ in range(3):
        compiled(ours_opt, backward(ours, ours_opt, x, y))
        step(theirs_opt, backward(theirs, theirs_opt, x, y))
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()))
    if isinstance(ours_opt, NGN):
        assert ours_opt.last_step_sizes() == pytest.approx(theirs_opt.last_step_sizes(), rel=1e-6)
    else:
        assert {s["step"].item() for s in ours_opt.state.values()} == {4.0}
