"""kernels.inputs: the scan and optimizer inputs every kernel script uses."""

import pytest
import torch

from kernels.inputs import optim_params, scan_inputs, split_evenly


def test_scan_inputs_shapes_ring_and_seed():
    lam, b, h0, grad = scan_inputs(2, 9, 5)
    assert b.shape == (2, 9, 5) and b.dtype == torch.complex64
    assert lam.shape == (5,) and lam.dtype == torch.complex64
    assert bool(((lam.abs() >= 0.9) & (lam.abs() <= 0.999)).all())
    assert h0 is None and grad is None
    again = scan_inputs(2, 9, 5)
    assert torch.equal(b, again.b) and torch.equal(lam, again.lam)
    assert not torch.equal(b, scan_inputs(2, 9, 5, seed=1).b)


def test_scan_inputs_optional_tensors_and_modulus():
    x = scan_inputs(3, 4, 6, modulus=(0.99, 1.0), h0=True, grad=True)
    assert x.h0.shape == (3, 6) and x.grad.shape == (3, 4, 6)
    assert bool((x.lam.abs() >= 0.99 - 1e-6).all())
    # asking for more tensors does not change the ones drawn first
    assert torch.equal(x.b, scan_inputs(3, 4, 6, modulus=(0.99, 1.0)).b)


def test_optim_params_have_gradients_and_sizes():
    params = optim_params([11, 11, 3])
    assert [p.numel() for p in params] == [11, 11, 3]
    assert all(isinstance(p, torch.nn.Parameter) and p.grad.shape == p.shape for p in params)
    assert torch.equal(params[0], optim_params([11])[0])


def test_split_evenly():
    assert split_evenly(10, 3) == [4, 3, 3]
    assert sum(split_evenly(1 << 20, 1000)) == 1 << 20
    with pytest.raises(ValueError, match="cannot split"):
        split_evenly(2, 3)


def test_time_varying_lambda_and_other_dtypes():
    x = scan_inputs(2, 5, 3, varying=True)
    assert x.lam.shape == (2, 5, 3) and bool(((x.lam.abs() >= 0.9) & (x.lam.abs() <= 0.999)).all())
    params = optim_params([7], dtype=torch.bfloat16)
    assert params[0].dtype == params[0].grad.dtype == torch.bfloat16
    assert torch.equal(params[0], optim_params([7])[0].to(torch.bfloat16))
