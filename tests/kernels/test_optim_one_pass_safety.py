"""One-pass NGN is safe: writes to the gradients that autograd's version counters do not
see are caught by the step, which then takes the γ of the gradients it reads; under
``torch.distributed`` with several ranks it refuses to run; its hooks take one fused
norm per bucket of gradients, not one per tensor."""

import copy
from unittest import mock

import pytest
import torch
from optim_helpers import (
    BACKENDS,
    Net,
    assert_close_fp32,
    data,
    ngn_groups,
    one_thread,  # noqa: F401 (an autouse fixture)
    two_runs,
)

from kernels.optim import NGN, hooks


def scale_through_data(model):
    # An in-place write through .data: its own version counter, not the gradient's.
    model.fc2.weight.grad.data.mul_(3.0)


def replace_through_data(model):
    # A .data assignment swaps the gradient's storage under the same tensor.
    g = model.fc1.weight.grad
    g.data = torch.full_like(g, 0.5)


@pytest.mark.parametrize("bucket_bytes", [1, hooks.BUCKET_BYTES], ids=["tensor", "default"])
@pytest.mark.parametrize("write", [scale_through_data, replace_through_data])
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_pass_ngn_takes_the_right_step_after_a_write_the_version_counter_misses(
    backend, write, bucket_bytes, monkeypatch
):
    # Buckets of one tensor, or of all of them (read as the backward ends): either way
    # every norm is taken before the write.
    monkeypatch.setattr(hooks, "BUCKET_BYTES", bucket_bytes)
    (ours, one), (theirs, two) = two_runs(backend=backend)
    x, y = data()
    for step in range(4):
        for model, opt in ((ours, one), (theirs, two)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            if step % 2:
                versions = [p.grad._version for p in model.parameters()]
                write(model)
                assert [p.grad._version for p in model.parameters()] == versions
            opt.step(loss=loss)
        # By the version counters the hooks' norms were current; the step's check says no.
        assert one.last_step_one_pass
        assert bool(one.last_step_hooks_agree) == (step % 2 == 0)
        assert one.last_step_sizes() == pytest.approx(two.last_step_sizes(), rel=1e-5)
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()), 1e-5)


def test_the_data_write_would_change_gamma():
    # The case above is not vacuous: with the hooks' norm, γ would be far off.
    model = Net()
    x, y = data()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    sq_norm = lambda: sum(torch.linalg.vector_norm(p.grad) ** 2 for p in model.parameters())
    hooked = sq_norm()
    scale_through_data(model)
    read = sq_norm()
    assert read > 1.5 * hooked


def world_of(size):
    import torch.distributed as dist

    return mock.patch.multiple(
        dist, is_available=lambda: True, is_initialized=lambda: True,
        get_world_size=lambda: size,
    )  # fmt: skip


def test_one_pass_ngn_refuses_several_ranks():
    p = torch.nn.Parameter(torch.ones(3))
    with world_of(2), pytest.raises(RuntimeError, match="torch.distributed.*2 ranks"):
        NGN([p], one_pass=True)
    opt = NGN([p], one_pass=True)  # made before the process group
    p.grad = torch.ones(3)
    with world_of(4), pytest.raises(RuntimeError, match="one_pass=False"):
        opt.step(loss=1.0)


def test_two_pass_ngn_and_a_single_rank_run_under_torch_distributed():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    with world_of(1):
        NGN([p], one_pass=True).step(loss=1.0)
    with world_of(8):
        NGN([p]).step(loss=1.0)
    assert p.detach().lt(1.0).all()


def test_hooks_take_one_fused_norm_per_bucket(monkeypatch):
    # 200 tensors of 4 KB: with 64 KB buckets, 13 fused norms in the backward (12 full
    # buckets, and the rest as it ends), not 200.
    monkeypatch.setattr(hooks, "BUCKET_BYTES", 64 << 10)
    params = [torch.nn.Parameter(torch.randn(1024)) for _ in range(200)]
    opt = NGN(params, sigma=0.1, one_pass=True)
    loss = sum((p * p).sum() for p in params)
    with mock.patch.object(torch, "_foreach_norm", wraps=torch._foreach_norm) as norm:
        loss.backward()
        during_backward = norm.call_count
        opt.step(loss=loss)
    assert during_backward == 200 * 4096 // (64 << 10) + 1
    assert norm.call_count == during_backward + 1  # the torch backend's check at the step
    assert opt.last_step_one_pass
    # f = Σ‖p‖² and g = 2p, so ‖g‖² = 4f and γ = σ / (1 + 2σ).
    (gamma,) = opt.last_step_sizes()
    assert gamma == pytest.approx(0.1 / 1.2, rel=1e-5)


@pytest.mark.gpu
def test_one_pass_ngn_on_cuda_corrects_a_step_after_a_data_write():
    # The compiled kernels' move of a step to the read γ, with momentum and decay.
    ours = Net().cuda()
    theirs = copy.deepcopy(ours)
    one = NGN(ngn_groups(ours), sigma=0.5, one_pass=True)
    two = NGN(ngn_groups(theirs), sigma=0.5)
    x, y = (t.cuda() for t in data())
    for step in range(6):
        for model, opt in ((ours, one), (theirs, two)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            if step % 2:
                scale_through_data(model)
            opt.step(loss=loss)
        assert bool(one.last_step_hooks_agree) == (step % 2 == 0)
    assert one.last_step_sizes() == pytest.approx(two.last_step_sizes(), rel=1e-5)
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()), 1e-5)
